"""The agent desk's "between calls" view on the records database: my calls today and in the last days with their
outcome and length, one of my calls opened (timeline and transcript; audited), my numbers (calls taken, average
handle time), and the contact record of a caller I talked to. `handoff.desk` serves it to the desk's token
through the `DeskHistory` protocol, so `handoff` knows no database."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder
from sqlalchemy import select
from sqlalchemy.orm import Session

from callpilot.ops.history import outcome_of, timeline
from callpilot.records.db import in_session
from callpilot.records.models import AuditEntry, CallRecord
from callpilot.records.projection import caller_number

T = TypeVar("T")
MAX_ROWS = 500


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _row(row: CallRecord) -> dict[str, Any]:
    return {"call_id": row.call_id, "started_at": _aware(row.started_at).isoformat(),
            "caller_number": row.caller_number, "queue": row.queue, "language": row.language,
            "outcome": outcome_of(row), "disposition": row.disposition, "duration_s": row.duration_s,
            "talk_s": row.talk_s, "status": row.status}


def numbers(rows: list[CallRecord]) -> dict[str, Any]:
    """Calls taken and the average handle time (talk time as recorded; calls still on have none yet)."""
    talk = [r.talk_s for r in rows if r.talk_s is not None]
    return {"calls": len(rows), "average_handle_s": round(sum(talk) / len(talk), 1) if talk else None,
            "talk_s": round(sum(talk), 1)}


class RecordsDeskHistory:
    """`DeskHistory` on `app.state.database` (with no database yet: empty lists and no calls)."""

    def __init__(self, app: FastAPI, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.app, self.clock = app, clock

    async def _run(self, work: Callable[[Session], T], default: T) -> T:
        return await in_session(getattr(self.app.state, "database", None), work, default)

    async def my_calls(self, agent_id: str, days: int, today_starts: datetime | None = None) -> dict[str, Any]:
        now = self.clock()
        since = now - timedelta(days=days)
        midnight = today_starts or now.replace(hour=0, minute=0, second=0, microsecond=0)

        def read(session: Session) -> dict[str, Any]:
            rows = list(session.scalars(select(CallRecord).where(CallRecord.agent_id == agent_id,
                                                                 CallRecord.started_at >= since)
                                        .order_by(CallRecord.started_at.desc()).limit(MAX_ROWS)))
            today = [r for r in rows if _aware(r.started_at) >= midnight]
            return {"calls": [_row(r) for r in rows], "today": numbers(today), "days": days,
                    "period": numbers(rows)}

        return await self._run(read, {"calls": [], "today": numbers([]), "days": days, "period": numbers([])})

    async def my_call(self, agent_id: str, call_id: str) -> dict[str, Any] | None:
        """One call the agent took, with its timeline and transcript; None when it is not theirs (or unknown).
        Opening it is written to the audit log."""
        def read(session: Session) -> dict[str, Any] | None:
            row = session.scalar(select(CallRecord).where(CallRecord.call_id == call_id))
            if row is None or row.agent_id != agent_id:
                return None
            session.add(AuditEntry(actor=f"agent:{agent_id}", action="call.view", target=call_id, detail={}))
            return {**_row(row), "notes": row.notes, "transcript": row.transcript or [],
                    "timeline": jsonable_encoder(timeline(row)), "recording": None}

        return await self._run(read, None)

    async def my_contact(self, agent_id: str, number: str) -> dict[str, Any] | None:
        """The contact record of a caller the agent talked to (None: not one of theirs, or no record)."""
        wanted = caller_number(number)
        if wanted is None:
            return None

        def knows(session: Session) -> bool:
            own = select(CallRecord.id).where(CallRecord.agent_id == agent_id, CallRecord.caller_number == wanted)
            return session.scalar(own.limit(1)) is not None

        if not await self._run(knows, False):
            return None
        lookup = getattr(self.app.state, "contacts", None)
        found = await lookup.by_number(wanted) if lookup is not None else None
        return None if found is None else {**asdict(found), "number": wanted}
