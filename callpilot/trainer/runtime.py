"""The workbench's part of the server: the inbox recorder on every dialogue engine, the data editor, the
training jobs and the model switcher, wired once per app."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.dialogue.engine import DialogueEngine
from bot.nlu.storage import active_id, prune
from callpilot.brains import build_dialogue
from callpilot.records.db import Database
from callpilot.records.models import InboxItem
from callpilot.settings import Settings
from callpilot.trainer.broadcast import ModelBroadcast
from callpilot.trainer.data_edit import DataEditor
from callpilot.trainer.inbox import InboxRecorder
from callpilot.trainer.jobs import Job, JobRunner
from callpilot.trainer.models import ModelSwitcher, NluHolder

log = logging.getLogger("callpilot.trainer")
INBOX_FOR_EVALUATION = 2000  # open items the new model is tried on


class TrainerRuntime:
    """Owns the workbench's parts for one app."""

    def __init__(self, settings: Settings, database: Database, holder: NluHolder, *,
                 call_id_of: Any = None) -> None:
        self.settings = settings
        self.database = database
        self.recorder = InboxRecorder(database, threshold=settings.inbox_confidence_threshold,
                                      call_id_of=call_id_of or (lambda sender: None))
        self.editor = DataEditor(settings.data_dir)
        self.jobs = JobRunner(settings.state_dir / "training", niceness=settings.train_niceness,
                              on_done=self._job_done)
        self.switcher = ModelSwitcher(settings.models_dir, settings.data_dir, holder, self._build)
        self.broadcast: ModelBroadcast | None = None
        if settings.redis_url:
            self.broadcast = ModelBroadcast(settings.redis_url,
                                            lambda model_id: self.switcher.activate(model_id, override=True,
                                                                                    publish=False))
            self.switcher.published = self.broadcast.publish

    def _build(self, data_dir: Path, engine: DialogueEngine) -> DialogueEngine:
        return build_dialogue(self.settings, engine.interpreter, data_dir=data_dir, store=engine.store)

    def attach(self, engine: DialogueEngine) -> None:
        """A dialogue engine of this process: its turns feed the inbox, its parts follow activations."""
        engine.turn_observers.append(self.recorder)
        self.switcher.attach(engine)

    async def start(self) -> None:
        if self.broadcast is not None:
            try:
                self.broadcast.start()
            except Exception as exc:  # no Redis: this process still switches its own models
                log.error("model broadcast off: %s", exc)

    async def stop(self) -> None:
        self.jobs.stop_all()
        self.recorder.close()
        if self.broadcast is not None:
            self.broadcast.stop()

    def start_training(self, by: str) -> Job:
        pointer = self.settings.models_dir / "active"
        since = datetime.fromtimestamp(pointer.stat().st_mtime, UTC) if pointer.exists() else None
        with self.database.session() as session:
            items = [{"id": i.id, "text": i.text} for i in session.scalars(
                select(InboxItem).where(InboxItem.status == "open").order_by(InboxItem.count.desc())
                .limit(INBOX_FOR_EVALUATION))]
            # Assigned since the live model went live: does the new one give them the intent they were given?
            assigned = select(InboxItem).where(InboxItem.status.in_(("done", "out_of_scope")))
            if since is not None:
                assigned = assigned.where(InboxItem.resolved_at >= since)
            items += [{"id": i.id, "text": i.text, "expected": i.resolution.get("intent")}
                      for i in session.scalars(assigned.order_by(InboxItem.resolved_at.desc())
                                               .limit(INBOX_FOR_EVALUATION))]
        spec = {
            "data_dir": str(self.settings.data_dir.resolve()), "models_dir": str(self.settings.models_dir.resolve()),
            "held_out": str(self.settings.held_out_data.resolve()) if self.settings.held_out_data else None,
            "conversations": str(self.settings.conversation_tests_dir.resolve())
            if self.settings.conversation_tests_dir else None,
            "inbox": items, "threshold": self.settings.inbox_confidence_threshold, "by": by,
        }
        return self.jobs.start(spec)

    def _job_done(self, job: Job) -> None:
        if job.returncode == 0:
            removed = prune(self.settings.models_dir, keep=self.settings.keep_models)
            if removed:
                log.info("removed old models %s (keep_models %d)", ", ".join(removed), self.settings.keep_models)
        else:
            log.error("training %s failed: %s (the active model %s stays)", job.id, job.status().get("error"),
                      active_id(self.settings.models_dir))
