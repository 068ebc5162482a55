"""Voicemails for the supervisor's floor: the messages callers left when nobody could take their call (the
overflow's voicemail), from the call records: listed newest first until a supervisor marks them done, played
(only from the recordings folder) and marked done; the routes audit both. `handoff.supervisor_actions` reaches them
through its `VoicemailBox` protocol, so `handoff` knows no database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session

from callpilot.records.db import in_session
from callpilot.records.models import CallRecord

T = TypeVar("T")
DAYS = 30
MAX_ROWS = 5000


class RecordsVoicemails:
    """`VoicemailBox` on `app.state.database`; message files must lie inside `recordings_dir`."""

    def __init__(self, app: FastAPI, recordings_dir: Path) -> None:
        self.app, self.recordings_dir = app, recordings_dir.resolve()

    async def _run(self, work: Callable[[Session], T], default: T) -> T:
        return await in_session(getattr(self.app.state, "database", None), work, default)

    async def waiting(self) -> list[dict[str, Any]]:
        """Messages of the last 30 days not marked done, newest first."""
        since = datetime.now(UTC) - timedelta(days=DAYS)

        def read(session: Session) -> list[dict[str, Any]]:
            rows = session.scalars(select(CallRecord).where(CallRecord.handoff_at >= since)
                                   .order_by(CallRecord.handoff_at.desc()).limit(MAX_ROWS))
            found = []
            for row in rows:
                box = (row.extra or {}).get("voicemail")
                if isinstance(box, dict) and not box.get("done_at"):
                    found.append({"call_id": row.call_id, "caller_number": row.caller_number, "queue": row.queue,
                                  "language": row.language, "left_at": box.get("at")})
            return found

        return await self._run(read, [])

    async def audio(self, call_id: str) -> Path | None:
        """The message's WAV; None if there is none or it is not in the recordings folder."""
        def find(session: Session) -> Path | None:
            row = session.scalar(select(CallRecord).where(CallRecord.call_id == call_id))
            box = (row.extra or {}).get("voicemail") if row is not None else None
            if not isinstance(box, dict) or not box.get("path"):
                return None
            path = Path(str(box["path"])).resolve()
            if not path.is_relative_to(self.recordings_dir) or not path.is_file():
                return None
            return path

        return await self._run(find, None)

    async def done(self, call_id: str) -> bool:
        """Off the list (kept on the call's record with when; who is in the audit log); False if the call left
        no message."""
        def mark(session: Session) -> bool:
            row = session.scalar(select(CallRecord).where(CallRecord.call_id == call_id))
            box = (row.extra or {}).get("voicemail") if row is not None else None
            if row is None or not isinstance(box, dict):
                return False
            row.extra = {**row.extra, "voicemail": {**box, "done_at": datetime.now(UTC).isoformat()}}
            return True

        return await self._run(mark, False)
