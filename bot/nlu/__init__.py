"""NLU: sentence encoder, intent classifier, entity extractors; Rasa's parse format."""

from bot.nlu.engine import NLUConfig, NLUEngine
from bot.nlu.storage import ModelNotFound, load, load_or_train, model_id_for, save, train_project

__all__ = [
    "ModelNotFound",
    "NLUConfig",
    "NLUEngine",
    "load",
    "load_or_train",
    "model_id_for",
    "save",
    "train_project",
]
