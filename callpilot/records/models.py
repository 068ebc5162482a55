"""The SQL tables of the call records: calls, contacts, tickets, API keys and the audit log.

Every time is stored as UTC; `UtcDateTime` hands back timezone-aware datetimes on both SQLite (which keeps
no zone) and PostgreSQL. Schema changes go through the Alembic migrations in `callpilot/records/migrations`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, Boolean, CheckConstraint, DateTime, Dialect, Float, Index, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every database (naive values are refused: they are ambiguous)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()}: give a timezone (UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class CallRecord(Base):
    """One call (or text conversation), built up from its call-log events."""

    __tablename__ = "calls"
    # Keeping a recording longer than 180 days needs the caller's consent (enforced by the database too).
    __table_args__ = (
        CheckConstraint("retention_days IS NULL OR retention_days <= 180 OR recording_consent",
                        name="retention_needs_consent"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String(80), unique=True)
    channel: Mapped[str] = mapped_column(String(16), default="voice")  # voice | text | api
    status: Mapped[str] = mapped_column(String(24), default="in_progress")  # in_progress | completed | ...
    # Caller
    caller_number: Mapped[str | None] = mapped_column(String(32), index=True)
    customer_id: Mapped[str | None] = mapped_column(String(64), index=True)
    language: Mapped[str | None] = mapped_column(String(16))
    transport: Mapped[str | None] = mapped_column(String(32))
    # Times (answered: the line was connected to the bot)
    started_at: Mapped[datetime] = mapped_column(index=True)
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    duration_s: Mapped[float | None] = mapped_column(Float)
    end_reason: Mapped[str | None] = mapped_column(String(64))
    # What the bot did
    ivr_path: Mapped[list[Any]] = mapped_column(default=list)
    intents: Mapped[list[Any]] = mapped_column(default=list)
    turns: Mapped[int] = mapped_column(Integer, default=0)
    contained: Mapped[bool | None] = mapped_column(Boolean, index=True)  # None until the call ends
    # Handoff to a human
    handoff_reason: Mapped[str | None] = mapped_column(String(64))
    handoff_at: Mapped[datetime | None]
    queue: Mapped[str | None] = mapped_column(String(64), index=True)
    agent_id: Mapped[str | None] = mapped_column(String(64), index=True)
    agent_name: Mapped[str | None] = mapped_column(String(128))
    agent_connected_at: Mapped[datetime | None]
    wait_s: Mapped[float | None] = mapped_column(Float)
    talk_s: Mapped[float | None] = mapped_column(Float)
    disposition: Mapped[str | None] = mapped_column(String(64), index=True)
    notes: Mapped[str | None] = mapped_column(Text)
    # Recording
    recording_path: Mapped[str | None] = mapped_column(String(512))
    recording_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    retention_days: Mapped[int | None] = mapped_column(Integer)
    recording_expires_at: Mapped[datetime | None] = mapped_column(index=True)
    recording_purged_at: Mapped[datetime | None]
    # PII-redacted transcript: [{"at": ISO, "speaker": "caller"|"bot"|"agent", "text": ...}]
    transcript: Mapped[list[Any]] = mapped_column(default=list)
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)  # unknown events' details, kept whole
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ApiKey(Base):
    """A bearer API key; only a salted SHA-256 of its secret is stored."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key_id: Mapped[str] = mapped_column(String(32), unique=True)  # the public part of the key
    name: Mapped[str] = mapped_column(String(128), default="")
    role: Mapped[str] = mapped_column(String(16))
    salt: Mapped[str] = mapped_column(String(64))
    secret_hash: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    agent_id: Mapped[str | None] = mapped_column(String(64))  # role agent: whose calls the key may see


class WebSession(Base):
    """A browser's sign-in (dashboard, supervisor page): the cookie holds the session id, this row its hash."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 of the cookie's session id
    key_id: Mapped[str] = mapped_column(String(32), index=True)  # the API key signed in with
    scope: Mapped[str] = mapped_column(String(32))  # "dashboard" | "supervisor": a cookie opens one page
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class Contact(Base):
    """A known caller (the built-in CRM); seeded from the demo back office's customers."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    phone: Mapped[str] = mapped_column(String(32), unique=True)  # E.164
    name: Mapped[str] = mapped_column(String(128))
    email: Mapped[str | None] = mapped_column(String(256))
    customer_id: Mapped[str | None] = mapped_column(String(64))
    tier: Mapped[str | None] = mapped_column(String(32))
    city: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Ticket(Base):
    """A follow-up ticket opened when a call ends (the built-in CRM's tickets)."""

    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String(80), unique=True)  # one ticket per call
    customer_id: Mapped[str | None] = mapped_column(String(64))
    caller_number: Mapped[str | None] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(256))
    body: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEntry(Base):
    """Who did what to which record, and when (recording purges, API key changes, downloads)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(128))  # "system:purge", "apikey:<key_id>", "cli"
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(128), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class InboxItem(Base):
    """A caller turn the bot did not handle well (the trainer's inbox); near-identical texts share one row.

    Open items wait for a trainer; done (assigned to an intent), out_of_scope and dismissed ones leave the
    inbox but stay, with who resolved them and when.
    """

    __tablename__ = "inbox_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    text: Mapped[str] = mapped_column(Text)  # redacted like the transcripts
    text_key: Mapped[str] = mapped_column(String(255), index=True)  # normalised: near-identical texts merge
    language: Mapped[str | None] = mapped_column(String(16))
    predicted_intent: Mapped[str | None] = mapped_column(String(128))
    confidence: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(String(32))  # fallback | low_confidence | corrected | handoff
    call_id: Mapped[str | None] = mapped_column(String(80), index=True)  # the latest call it came from
    channel: Mapped[str | None] = mapped_column(String(16))
    count: Mapped[int] = mapped_column(Integer, default=1)
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)  # open|done|out_of_scope|dismissed
    resolution: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"intent", "entities", "file"}
    resolved_by: Mapped[str | None] = mapped_column(String(128))
    resolved_at: Mapped[datetime | None]


Index("ix_calls_ended_at", CallRecord.ended_at)
