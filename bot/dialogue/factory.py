"""Builds a ready dialogue engine from a data folder (domain, rules, IVR, demo actions)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.backoffice.office import BackOffice
from bot.dialogue.action_server import RemoteActionClient
from bot.dialogue.actions.demo import demo_registry
from bot.dialogue.actions.registry import ActionRegistry
from bot.dialogue.engine import DialogueEngine, Interpreter
from bot.dialogue.settings import DialogueSettings
from bot.dialogue.store import SessionStore
from bot.ivr import IvrEngine, load_ivr
from bot.training_data import load_project
from bot.training_data.project import LANGUAGE_FOLDERS

IVR_FILE = "ivr.yml"


def build_registry(remote_actions: Mapping[str, str] | None = None) -> ActionRegistry:
    """The demo actions, with any action name served by a remote Rasa action server URL."""
    registry = demo_registry()
    for name, url in (remote_actions or {}).items():
        registry.serve_remotely(name, RemoteActionClient(url))
    return registry


def build_engine(
    data_dir: Path,
    interpreter: Interpreter,
    *,
    store: SessionStore | None = None,
    settings: DialogueSettings | None = None,
    now: Callable[[], float] = time.time,
    backoffice: Any = None,
    remote_actions: Mapping[str, str] | None = None,
    ivr_file: Path | None = None,
    redact: Callable[[str], str] | None = None,
) -> DialogueEngine:
    """Load `data_dir` (Rasa YAML + ivr.yml) and wire it to the demo back office."""
    project = load_project(data_dir)
    ivr_path = ivr_file or data_dir / IVR_FILE
    ivr = IvrEngine(load_ivr(ivr_path)) if ivr_path.exists() else None
    # The same menus in another language: `<data>/<language>/ivr.yml` (prompts only differ)
    translated = {folder.name: IvrEngine(load_ivr(folder / IVR_FILE)) for folder in sorted(data_dir.iterdir())
                  if ivr is not None and folder.name in LANGUAGE_FOLDERS and (folder / IVR_FILE).exists()}
    if backoffice is None:
        backoffice = BackOffice.demo(today=datetime.fromtimestamp(now(), tz=UTC).date())
    return DialogueEngine(project.domain, project.rules, interpreter,
                          build_registry(remote_actions), ivr, store, settings, now,
                          backoffice=backoffice, redact=redact, ivr_translations=translated)
