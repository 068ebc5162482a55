"""Calls a crashed process left `in_progress`: closed from the call log when it holds their end, else marked
interrupted at their last update; calls that may still be live (younger than any call may last) are left
alone, so several processes on one database never close each other's calls. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from callpilot.records.db import Database
from callpilot.records.models import CallRecord
from callpilot.records.projection import RecordEvent, apply_event, new_record
from callpilot.records.stale import close_stale
from tests.records_fixtures import database, pg_schema_url  # noqa: F401  (fixtures)

NOW = datetime(2027, 1, 15, 12, 0, tzinfo=UTC)


def started(db: Database, call_id: str, at: datetime) -> None:
    event = RecordEvent(call_id, "started", at, {"transport": "sip", "caller": "+8613812345678"})
    with db.session() as session:
        row = new_record(event, retention_days=90)
        apply_event(row, event)
        row.updated_at = at
        session.add(row)


def test_orphaned_calls_are_closed_from_the_log_or_marked_interrupted(database: Database, tmp_path: Path) -> None:  # noqa: F811
    started(database, "sip-logged", NOW - timedelta(hours=3))
    started(database, "sip-lost", NOW - timedelta(hours=2))
    started(database, "sip-live", NOW - timedelta(minutes=5))  # may be another process's live call
    log = tmp_path / "calls.jsonl"
    log.write_text("not json\n" + json.dumps({"call_id": "sip-logged", "event": "ended",
                                               "at": (NOW - timedelta(hours=3) + timedelta(seconds=95)).timestamp(),
                                               "call_ms": 95000, "reason": "hangup"}) + "\n")
    closed = close_stale(database, older_than=timedelta(hours=1, minutes=2), call_log=log, now=NOW)
    assert closed == {"sip-logged": "from_log", "sip-lost": "interrupted"}
    with database.session() as session:
        rows = {r.call_id: r for r in session.scalars(select(CallRecord))}
        assert (rows["sip-logged"].status, rows["sip-logged"].end_reason) == ("completed", "hangup")
        assert rows["sip-logged"].duration_s == 95.0
        assert (rows["sip-lost"].status, rows["sip-lost"].end_reason) == ("interrupted", "interrupted")
        assert rows["sip-live"].status == "in_progress"
    assert close_stale(database, older_than=timedelta(hours=1, minutes=2), call_log=log, now=NOW) == {}
