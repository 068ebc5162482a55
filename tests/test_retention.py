"""Recording retention: policies, consent beyond 180 days, and the purge under a controlled clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from typer.testing import CliRunner

from callpilot.cli import app as cli
from callpilot.records.apikeys import create_key
from callpilot.records.db import Database
from callpilot.records.models import AuditEntry, CallRecord
from callpilot.records.projection import RecordEvent
from callpilot.records.retention import (
    CallLogRetention,
    RetentionError,
    check_retention,
    purge,
    purge_call_log,
    purge_daily,
    set_retention,
)
from callpilot.records.runtime import RecordsRuntime, mount_records
from callpilot.records.writer import store_events
from callpilot.settings import Settings
from tests.records_fixtures import database, pg_schema_url, sqlite_database  # noqa: F401

T0 = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)  # every test call ends here


def _recorded_call(db: Database, folder: Path, call_id: str, *, days: int, consent: bool = False) -> Path:
    wav = folder / f"{call_id}.wav"
    wav.write_bytes(b"RIFF fake wav")
    events = [RecordEvent(call_id, "started", T0 - timedelta(minutes=3), {"transport": "twilio"}),
              RecordEvent(call_id, "ended", T0, {"reason": "caller_hangup", "recording": str(wav)})]
    with db.session() as session:
        (row,) = store_events(session, events, retention_days=90)
        set_retention(row, days, consent=consent)
    return wav


def _row(db: Database, call_id: str) -> CallRecord:
    with db.session() as session:
        row = session.scalar(select(CallRecord).where(CallRecord.call_id == call_id))
        assert row is not None
        return row


def _purges(db: Database) -> list[tuple[str, datetime]]:
    with db.session() as session:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.action == "recording.purge")
                                  .order_by(AuditEntry.id)).all()
        return [(e.target, e.at) for e in entries]


@pytest.mark.parametrize(("days", "consent"), [(30, False), (90, False), (180, False), (181, True), (365, True),
                                               (3650, True)])
def test_allowed_retention(days: int, consent: bool) -> None:
    assert check_retention(days, consent) == days


@pytest.mark.parametrize(
    ("days", "consent", "message"),
    [
        (365, False, "needs the caller's recorded consent"),
        (181, False, "needs the caller's recorded consent"),
        (60, True, "use one of the policies 30, 90, 180"),
        (0, True, "use 30, 90, 180"),
        (-30, False, "use 30, 90, 180"),
        (3651, True, "up to 3650 days"),
    ],
)
def test_refused_retention_says_why(days: int, consent: bool, message: str) -> None:
    with pytest.raises(RetentionError, match=message):
        check_retention(days, consent)


def test_the_database_refuses_long_retention_without_consent(database: Database, tmp_path: Path) -> None:  # noqa: F811
    _recorded_call(database, tmp_path, "r-db", days=90)
    with pytest.raises(IntegrityError), database.session() as session:
        session.execute(update(CallRecord).where(CallRecord.call_id == "r-db").values(retention_days=400))
    assert _row(database, "r-db").retention_days == 90


def test_the_purge_deletes_each_recording_when_its_time_is_up(database: Database, tmp_path: Path) -> None:  # noqa: F811
    month = _recorded_call(database, tmp_path, "r-30", days=30)
    quarter = _recorded_call(database, tmp_path, "r-90", days=90)
    year = _recorded_call(database, tmp_path, "r-365", days=365, consent=True)

    assert purge(database, T0 + timedelta(days=30) - timedelta(seconds=1)) == []
    assert month.exists() and _purges(database) == []

    done = purge(database, T0 + timedelta(days=30))
    assert [(p.call_id, p.path) for p in done] == [("r-30", str(month))]
    assert not month.exists() and quarter.exists() and year.exists()
    row = _row(database, "r-30")
    assert row.recording_path is None and row.recording_purged_at == T0 + timedelta(days=30)
    assert _purges(database) == [("r-30", T0 + timedelta(days=30))]

    assert purge(database, T0 + timedelta(days=30, hours=1)) == []  # nothing twice
    assert [p.call_id for p in purge(database, T0 + timedelta(days=200))] == ["r-90"]
    assert year.exists() and _row(database, "r-365").recording_path == str(year)
    assert [p.call_id for p in purge(database, T0 + timedelta(days=365))] == ["r-365"]
    assert [target for target, _ in _purges(database)] == ["r-30", "r-90", "r-365"]
    assert not quarter.exists() and not year.exists()


def test_a_purged_recording_is_gone_from_the_api(tmp_path: Path) -> None:
    db = sqlite_database(tmp_path)
    _recorded_call(db, tmp_path, "r-api", days=30)
    with db.session() as session:
        key = create_key(session, "supervisor")
    app = FastAPI()
    mount_records(app, RecordsRuntime(Settings.load(None, {}, state_dir=tmp_path), db))
    client = TestClient(app)
    headers = {"Authorization": f"Bearer {key}"}
    assert client.get("/api/v1/calls/r-api/recording", headers=headers).status_code == 200
    purge(db, T0 + timedelta(days=31))
    gone = client.get("/api/v1/calls/r-api/recording", headers=headers)
    assert gone.status_code == 410 and "retention 30 days" in gone.json()["detail"]
    call = client.get("/api/v1/calls/r-api", headers=headers).json()
    assert call["recording_available"] is False and call["recording_purged_at"] is not None


def test_the_purge_command_takes_the_time_to_pretend(tmp_path: Path) -> None:
    db = sqlite_database(tmp_path)
    wav = _recorded_call(db, tmp_path, "r-cli", days=90)
    env = {"CALLPILOT_STATE_DIR": str(tmp_path)}
    runner = CliRunner()
    early = runner.invoke(cli, ["records", "purge", "--now", "2026-02-01T00:00:00"], env=env)
    assert early.exit_code == 0 and "0 recording(s) purged" in early.output and wav.exists()
    late = runner.invoke(cli, ["records", "purge", "--now", "2026-04-10T12:00:00+00:00"], env=env)
    assert late.exit_code == 0 and "purged r-cli" in late.output and not wav.exists()
    bad = runner.invoke(cli, ["records", "purge", "--now", "next tuesday"], env=env)
    assert bad.exit_code == 2 and "expected ISO 8601" in bad.output


def test_the_server_purge_task_runs_at_start_and_then_on_its_interval(tmp_path: Path) -> None:
    db = sqlite_database(tmp_path)
    _recorded_call(db, tmp_path, "r-task-1", days=30)
    _recorded_call(db, tmp_path, "r-task-2", days=90)
    now = [T0 + timedelta(days=45)]

    async def run() -> list[str]:
        task = asyncio.create_task(purge_daily(db, 0.01, clock=lambda: now[0]))
        while len(_purges(db)) < 1:
            await asyncio.sleep(0.01)
        now[0] = T0 + timedelta(days=95)  # the next day's run
        while len(_purges(db)) < 2:
            await asyncio.sleep(0.01)
        task.cancel()
        return [target for target, _ in _purges(db)]

    assert asyncio.run(run()) == ["r-task-1", "r-task-2"]


def _call_log_purges(db: Database) -> list[str]:
    with db.session() as session:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.action == "call_log.purge")
                                  .order_by(AuditEntry.id)).all()
        return [e.target for e in entries]


def test_the_daily_task_rotates_the_call_log_and_purges_its_old_days(tmp_path: Path) -> None:
    """The call log (and the wrap-ups in it) follows the default retention: its days go after 30 here."""
    from voice_gateway.call_log import CallLog, LifecycleKind, rotated_call_logs

    db, path = sqlite_database(tmp_path), tmp_path / "results" / "calls.jsonl"
    written = [T0]
    log = CallLog(path, clock=lambda: written[0].timestamp())
    log.record("old", LifecycleKind.STARTED, 0, caller="+16175550142")
    written[0] = T0 + timedelta(days=1)
    log.record("next-day", LifecycleKind.STARTED, 0)  # rotates the first day aside
    now = [T0 + timedelta(days=20)]
    retention = CallLogRetention(path, 30)

    async def run() -> None:
        task = asyncio.create_task(purge_daily(db, 0.01, clock=lambda: now[0], call_log=retention))
        while [d for d, _ in rotated_call_logs(path)] != [T0.date(), (T0 + timedelta(days=1)).date()]:
            await asyncio.sleep(0.01)  # day 20: the stale current file is rotated, nothing is old enough
        assert _call_log_purges(db) == []
        now[0] = T0 + timedelta(days=31, hours=1)  # a later day's run: the first day is past 30 days
        while len(_call_log_purges(db)) < 1:
            await asyncio.sleep(0.01)
        task.cancel()

    asyncio.run(run())
    assert _call_log_purges(db) == ["calls.2026-01-10.jsonl"]
    assert [p.name for _, p in rotated_call_logs(path)] == ["calls.2026-01-11.jsonl"]
    assert not path.exists()  # nothing written since: no current file


def test_purge_call_log_without_a_database(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    (tmp_path / "calls.2025-01-01.jsonl").write_text("{}\n", encoding="utf-8")
    assert [p.name for p in purge_call_log(None, CallLogRetention(path, 90), T0)] == ["calls.2025-01-01.jsonl"]
