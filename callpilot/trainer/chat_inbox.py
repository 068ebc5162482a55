"""`callpilot chat`'s turns in the trainer's inbox, like the server's channels (skipped, with a note, when the
records database cannot be reached)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from bot.dialogue.engine import DialogueEngine
from callpilot.records.db import Database
from callpilot.settings import Settings
from callpilot.trainer.inbox import InboxRecorder

log = logging.getLogger("callpilot.trainer")


@contextmanager
def chat_inbox(settings: Settings, engine: DialogueEngine) -> Iterator[InboxRecorder | None]:
    try:
        database = Database.from_settings(settings)
        database.upgrade()
    except Exception as exc:
        log.warning("the inbox is off for this chat: the records database is unavailable (%s)", type(exc).__name__)
        yield None
        return
    session = f"chat-{time.strftime('%Y%m%d%H%M%S')}"
    recorder = InboxRecorder(database, threshold=settings.inbox_confidence_threshold,
                             call_id_of=lambda sender: session)
    engine.turn_observers.append(recorder)
    try:
        yield recorder
    finally:
        recorder.flush()
        recorder.close()
        database.dispose()
