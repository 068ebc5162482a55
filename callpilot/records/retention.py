"""Recording retention: 30, 90 or 180 days by policy; longer only with the caller's recorded consent.

`purge_expired` deletes recordings whose time is up (the file and the call's recording fields) and writes one
audit-log entry per recording; the server runs it daily and `callpilot records purge [--now ISO]` on demand.
The same daily task rotates the call-log file (`results/calls.jsonl`, also the wrap-ups' file) and deletes
its days older than the default retention (`purge_call_log`). The clock is always passed in, so tests control it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from callpilot.records.db import Database
from callpilot.records.models import AuditEntry, CallRecord, utcnow
from voice_gateway.call_log import purge_call_logs

log = logging.getLogger("callpilot.records.retention")

POLICIES = (30, 90, 180)  # days a recording may be kept without asking the caller
LONGEST_WITHOUT_CONSENT = 180
LONGEST = 3650


class RetentionError(ValueError):
    """A retention period that is not allowed for this call (the message says why)."""


def check_retention(days: int, consent: bool) -> int:
    """`days` if it is allowed: one of POLICIES, or up to LONGEST when the caller consented."""
    if days in POLICIES:
        return days
    if days <= 0 or days > LONGEST:
        raise RetentionError(f"retention of {days} days: use {', '.join(map(str, POLICIES))} "
                             f"(or up to {LONGEST} days with the caller's consent)")
    if days < LONGEST_WITHOUT_CONSENT:
        raise RetentionError(f"retention of {days} days: below {LONGEST_WITHOUT_CONSENT} days use one of the "
                             f"policies {', '.join(map(str, POLICIES))}")
    if not consent:
        raise RetentionError(f"retention of {days} days needs the caller's recorded consent: longer than "
                             f"{LONGEST_WITHOUT_CONSENT} days only when the call's recording_consent is true")
    return days


def set_retention(row: CallRecord, days: int, *, consent: bool | None = None) -> None:
    """Change a call's retention (and consent flag), recomputing when its recording expires."""
    granted = row.recording_consent if consent is None else consent
    row.retention_days = check_retention(days, granted)
    row.recording_consent = granted
    row.recording_expires_at = expiry(row)


def expiry(row: CallRecord) -> datetime | None:
    """When the call's recording must be gone (None while the call lasts or without a recording)."""
    if row.recording_path is None or row.retention_days is None:
        return None
    return (row.ended_at or row.started_at) + timedelta(days=row.retention_days)


@dataclass(frozen=True)
class Purged:
    call_id: str
    path: str
    expired_at: datetime


def purge_expired(session: Session, now: datetime, *, actor: str = "system:purge") -> list[Purged]:
    """Delete every recording that expired at or before `now`: file, DB fields, one audit entry each."""
    due = session.scalars(
        select(CallRecord)
        .where(CallRecord.recording_path.is_not(None), CallRecord.recording_expires_at <= now)
        .order_by(CallRecord.recording_expires_at)
    ).all()
    purged = []
    for row in due:
        path, expired_at = row.recording_path or "", row.recording_expires_at or now
        existed = Path(path).exists()
        Path(path).unlink(missing_ok=True)
        row.recording_path = None
        row.recording_purged_at = now
        session.add(AuditEntry(at=now, actor=actor, action="recording.purge", target=row.call_id,
                               detail={"path": path, "expired_at": expired_at.isoformat(),
                                       "retention_days": row.retention_days, "file_existed": existed}))
        purged.append(Purged(row.call_id, path, expired_at))
    return purged


def purge(database: Database, now: datetime | None = None) -> list[Purged]:
    with database.session() as session:
        done = purge_expired(session, now or utcnow())
    for item in done:
        log.info("purged the recording of call %s (expired %s)", item.call_id, item.expired_at.isoformat())
    return done


@dataclass(frozen=True)
class CallLogRetention:
    """The call-log file and how many days of it to keep (the default retention policy)."""

    path: Path
    days: int


def purge_call_log(database: Database | None, retention: CallLogRetention, now: datetime,
                   *, actor: str = "system:purge") -> list[Path]:
    """Rotate the call log if its day is over and delete its days older than the retention, audited."""
    gone = purge_call_logs(retention.path, now.date(), retention.days)
    for path in gone:
        log.info("purged the call log %s (older than %d days)", path, retention.days)
    if gone and database is not None:
        with database.session() as session:
            session.add_all(AuditEntry(at=now, actor=actor, action="call_log.purge", target=path.name,
                                       detail={"path": str(path), "retention_days": retention.days})
                            for path in gone)
    return gone


async def purge_daily(database: Database, interval_s: float, *, clock: Callable[[], datetime] = utcnow,
                      call_log: CallLogRetention | None = None,
                      is_leader: Callable[[], bool] = lambda: True) -> None:
    """The server's purge task: once at start, then every `interval_s` seconds (a day by default). Each process
    purges its own call-log files; the recordings (shared by every process) only the leader, so one purge
    writes one audit line per recording (a process that does not lead looks again every minute)."""
    while True:
        now = clock()
        if call_log is not None:
            try:
                await asyncio.to_thread(purge_call_log, database, call_log, now)
            except Exception:  # a file system or database error; try again next time
                log.exception("the call-log purge failed")
        leading = is_leader()
        if leading:
            try:
                await asyncio.to_thread(purge, database, now)
            except Exception:  # the database may be down; try again next time
                log.exception("the recording purge failed")
        await asyncio.sleep(interval_s if leading else min(interval_s, 60.0))
