"""Shared fixtures: the demo NLU model, trained once per test session (or reused from models/)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from bot.nlu import NLUEngine, load_or_train

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def nlu_engine() -> NLUEngine:
    """The demo assistant's model, trained from nlu_data/ unless models/ already has it."""
    return load_or_train(ROOT / "nlu_data", ROOT / "models")
