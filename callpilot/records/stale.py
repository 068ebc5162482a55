"""Calls a crash left open: a row still `in_progress` long after any call could last (`max_call_s`) was
orphaned by a process that died mid-call. It is closed from the call log when the log holds the call's end
(written before the records writer lost it), else marked `interrupted` at its last update. Run at start and
every few minutes, so several processes on one database never close each other's live calls."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from callpilot.records.db import Database
from callpilot.records.models import CallRecord
from callpilot.records.projection import RecordEvent, apply_event
from voice_gateway.call_log import CallEvent, LifecycleKind

log = logging.getLogger("callpilot.records")


def _ends_in_log(call_log: Path | None, call_ids: set[str]) -> dict[str, RecordEvent]:
    """The `ended` events of these calls in the call log file (JSON lines; unreadable lines are skipped)."""
    found: dict[str, RecordEvent] = {}
    if call_log is None or not call_log.exists() or not call_ids:
        return found
    with call_log.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if '"ended"' not in line:  # most lines: not worth parsing
                continue
            try:
                event = CallEvent.from_json(line)
            except (ValueError, KeyError):
                continue
            if event.kind is LifecycleKind.ENDED and event.call_id in call_ids:
                found[event.call_id] = RecordEvent.from_call_event(event)
    return found


def close_stale(database: Database, *, older_than: timedelta, call_log: Path | None = None,
                now: datetime | None = None) -> dict[str, str]:
    """Close the orphaned calls; returns call id -> how (`from_log` or `interrupted`)."""
    now = now or datetime.now(UTC)
    cutoff = now - older_than
    closed: dict[str, str] = {}
    with database.session() as session:
        rows = list(session.scalars(select(CallRecord).where(CallRecord.status == "in_progress",
                                                              CallRecord.channel == "voice",
                                                              CallRecord.updated_at < cutoff)))
        ends = _ends_in_log(call_log, {row.call_id for row in rows})
        for row in rows:
            end = ends.get(row.call_id)
            if end is not None:
                apply_event(row, end)
                closed[row.call_id] = "from_log"
            else:
                last = row.updated_at
                row.ended_at, row.end_reason, row.status = last, "interrupted", "interrupted"
                row.duration_s = max(0.0, (last - row.started_at).total_seconds()) if row.started_at else None
                row.contained = row.contained if row.contained is not None else row.handoff_at is None
                closed[row.call_id] = "interrupted"
    if closed:
        log.warning("closed %d call(s) a stopped process left open: %s", len(closed),
                    ", ".join(f"{cid} ({how})" for cid, how in sorted(closed.items())))
    return closed
