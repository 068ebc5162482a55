"""The active NLU model of this process, swapped atomically when a new one is activated."""

from __future__ import annotations

import logging
import threading
from typing import Any

from bot.nlu import NLUEngine, load_or_train
from bot.nlu import load as load_model
from bot.training_data.model import DataError
from callpilot.settings import Settings
from callpilot.trainer.worker import activated_on_workbench

log = logging.getLogger("callpilot")


class ModelHolder:
    """The active NLU model; replaced atomically (one reference swap) on reload."""

    def __init__(self, engine: NLUEngine | None = None) -> None:
        self.engine = engine
        self.error: str | None = None
        self.ready = threading.Event()
        if engine is not None:
            self.ready.set()

    def parse(self, text: str) -> dict[str, Any]:
        engine = self.engine
        if engine is None:
            raise RuntimeError("the NLU model is not loaded yet")
        return engine.parse(text)

    def swap(self, engine: NLUEngine) -> None:
        self.engine = engine
        self.error = None
        self.ready.set()

    def load(self, settings: Settings) -> None:
        """Train if needed and load; keep the current model if the data is broken."""
        try:
            self.swap(load_model(settings.models_dir) if activated_on_workbench(settings.models_dir)
                      else load_or_train(settings.data_dir, settings.models_dir))
            log.info("NLU model %s loaded", self.engine.model_id if self.engine else "?")
        except DataError as exc:
            self.error = f"training data has errors:\n{exc}"
            log.error("%s", self.error)
        except Exception as exc:  # a broken model must not take the server down
            self.error = f"{type(exc).__name__}: {exc}"
            log.exception("could not load the NLU model")
