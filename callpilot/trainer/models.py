"""The kept models and the swap: activate or roll back any of them in the running server, all at once.

A swap loads the model and builds the dialogue parts (domain, rules, responses, IVR) from the data the model
was trained on before anything changes; then, with every dialogue engine paused between turns, the NLU and the
parts are replaced together (a turn in progress finishes on the old model first) and `models/active` is
rewritten, so a restart loads the same model. With `redis_url`, the other processes are told to switch too.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Protocol

from bot.dialogue.engine import DialogueEngine
from bot.nlu import NLUEngine
from bot.nlu.storage import active_id, load, set_active
from callpilot.trainer.worker import DATA_SNAPSHOT, TRAINER_MARK

log = logging.getLogger("callpilot.trainer")


class NeedsOverride(RuntimeError):
    """The model fails conversation tests: activating it needs an explicit override."""


class NluHolder(Protocol):
    def swap(self, engine: NLUEngine) -> None: ...


def model_list(models_dir: Path) -> list[dict[str, Any]]:
    """Every kept model, newest first, with its evaluation when it was trained on the workbench."""
    active = active_id(models_dir)
    out = []
    folders = [p for p in models_dir.iterdir() if p.is_dir() and (p / "meta.json").exists()] \
        if models_dir.is_dir() else []
    for folder in folders:
        meta = json.loads((folder / "meta.json").read_text())
        mark = folder / TRAINER_MARK
        evaluation = json.loads(mark.read_text()).get("evaluation") if mark.exists() else None
        out.append({"id": folder.name, "trained_at": meta.get("trained_at"), "active": folder.name == active,
                    "intents": len(meta.get("intents") or []), "evaluation": evaluation,
                    "breaks_conversations": bool(evaluation and evaluation.get("breaks_conversations"))})
    return sorted(out, key=lambda m: -(m["trained_at"] or 0))


class ModelSwitcher:
    """Swaps the model of every dialogue engine of this process (the REST channel's, the voice calls')."""

    def __init__(self, models_dir: Path, data_dir: Path, holder: NluHolder,
                 build: Callable[[Path, DialogueEngine], DialogueEngine]) -> None:
        self.models_dir, self.data_dir = models_dir, data_dir
        self.holder = holder
        self.build = build  # (data folder, engine it replaces) -> a new engine with the same session store
        self.engines: list[DialogueEngine] = []
        self.published: Callable[[str], None] | None = None  # tells the other processes (Redis)
        self._lock = threading.Lock()

    def attach(self, engine: DialogueEngine) -> None:
        with self._lock:
            self.engines.append(engine)

    def activate(self, model_id: str, *, override: bool = False, publish: bool = True) -> dict[str, Any]:
        folder = self.models_dir / model_id
        if "/" in model_id or model_id.startswith(".") or not (folder / "meta.json").exists():
            raise LookupError(f"no kept model {model_id!r}")
        mark = folder / TRAINER_MARK
        evaluation = json.loads(mark.read_text()).get("evaluation") if mark.exists() else None
        if evaluation and evaluation.get("breaks_conversations") and not override:
            failed = ", ".join(f["name"] for f in evaluation["conversations"]["failed"])
            raise NeedsOverride(f"model {model_id} fails conversation tests ({failed}): activate with override")
        data = folder / DATA_SNAPSHOT if (folder / DATA_SNAPSHOT).is_dir() and evaluation else self.data_dir
        nlu = load(self.models_dir, model_id)  # everything slow happens before the pause
        with self._lock:
            engines = list(self.engines)
            replacements = [self.build(data, engine) for engine in engines]
            with ExitStack() as paused:
                for engine in engines:
                    paused.enter_context(engine.parts_lock.swap())
                for engine, replacement in zip(engines, replacements, strict=True):
                    engine.take_parts(replacement)
                self.holder.swap(nlu)
            set_active(self.models_dir, model_id)
        log.info("model %s is live (%d dialogue engines)", model_id, len(engines))
        if publish and self.published is not None:
            self.published(model_id)
        return {"model_id": model_id, "active": True, "engines": len(engines)}
