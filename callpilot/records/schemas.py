"""What the records API accepts and returns (pydantic models; they also make the OpenAPI page at /docs)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.backoffice import normalize_phone
from callpilot.records.models import CallRecord

CALL_STATUSES = ("in_progress", "completed", "abandoned", "missed", "failed", "busy", "no_answer", "voicemail",
                 "interrupted")
CallStatus = Literal["in_progress", "completed", "abandoned", "missed", "failed", "busy", "no_answer", "voicemail",
                     "interrupted"]
_E164 = re.compile(r"\+[1-9]\d{7,14}")


class IntentScore(BaseModel):
    intent: str
    confidence: float | None = Field(None, description="The NLU's confidence (0-1) when it was logged.")


class CallOut(BaseModel):
    """One call record (without the transcript: GET /calls/{id}/transcript). The names `POST /calls` takes
    (`customer_id`, `phone_number`, `call_duration`, `status`) are returned too, beside callpilot's own."""

    model_config = ConfigDict(from_attributes=True)

    call_id: str
    channel: str = Field(description="voice (a phone call through callpilot), text (the REST channel) or api "
                                     "(reported through POST /calls).")
    status: str = Field(description="in_progress, completed, abandoned (the caller hung up waiting for an agent), "
                                    "or what an integrator posted (missed, failed, busy, no_answer, voicemail).")
    caller_number: str | None = Field(description="The caller's number (E.164 when North American).")
    phone_number: str | None = Field(None, description="The same as `caller_number` (POST /calls' name).")
    customer_id: str | None
    language: str | None
    transport: str | None
    started_at: datetime = Field(description="When the call reached callpilot (the gateway took the stream).")
    answered_at: datetime | None = Field(description=(
        "When the caller was answered: for voice calls the moment the bot's first audio (its greeting, or the "
        "recording announcement) was sent, or an agent joining if that came first; for text conversations the "
        "bot's first reply; for posted calls `started_at` when the status is completed. None: never answered "
        "(the caller hung up first). When an agent answered: `handoff_at` + `wait_s`."))
    ended_at: datetime | None
    duration_s: float | None = Field(description="Seconds from started_at to ended_at.")
    call_duration: float | None = Field(None, description="The same as `duration_s` (POST /calls' name).")
    end_reason: str | None
    ivr_path: list[str]
    intents: list[str]
    intent_scores: list[IntentScore] = Field(default_factory=list, description="`intents` with confidences.")
    turns: int
    contained: bool | None
    handoff_reason: str | None
    handoff_at: datetime | None
    queue: str | None
    agent_id: str | None
    agent_name: str | None
    wait_s: float | None
    talk_s: float | None
    disposition: str | None
    notes: str | None
    recording_available: bool
    recording_consent: bool
    retention_days: int | None
    recording_expires_at: datetime | None
    recording_purged_at: datetime | None

    @classmethod
    def of(cls, row: CallRecord) -> CallOut:
        scores = (row.extra or {}).get("intent_scores") or [{"intent": name} for name in row.intents]
        return cls.model_validate({**_columns(row), "recording_available": row.recording_path is not None,
                                   "intent_scores": scores, "phone_number": row.caller_number,
                                   "call_duration": row.duration_s})


def _columns(row: CallRecord) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in CallRecord.__table__.columns}


class CallPage(BaseModel):
    total: int = Field(description="Calls matching the filters (all pages).")
    limit: int
    offset: int
    items: list[CallOut]


class TranscriptLine(BaseModel):
    at: datetime
    speaker: str = Field(description="caller, bot, or agent (the agent leg: joined, hold, left, wrap-up notes, "
                                     "in brackets; the agent's words are not transcribed).")
    text: str = Field(description="What was said (the bot: what the caller heard of it), or `[key 5]`.")
    interrupted: bool = Field(False, description="The caller cut the bot off: `text` is the part they heard.")
    intent: str | None = Field(None, description="The caller's words: the intent the NLU understood.")
    confidence: float | None = Field(None, description="The NLU's confidence in `intent`.")


class Transcript(BaseModel):
    call_id: str
    redacted: bool = Field(True, description="Card, ID, e-mail and phone numbers are replaced before storage.")
    lines: list[TranscriptLine]


class CallIn(BaseModel):
    """A finished call reported by an integrator (another phone system, a CRM)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    customer_id: str = Field(min_length=1, max_length=64, examples=["C001"])
    phone_number: str = Field(description="E.164, e.g. +16175550142 (North American formats are accepted).",
                              examples=["+16175550142"])
    call_duration: float = Field(ge=0, le=86400, description="Seconds.", examples=[184])
    status: CallStatus = Field(examples=["completed"])
    # Optional details
    call_id: str | None = Field(None, min_length=1, max_length=80, pattern=r"^[A-Za-z0-9._:-]+$")
    started_at: datetime | None = Field(None, description="Default: now minus call_duration.")
    queue: str | None = Field(None, max_length=64)
    agent_id: str | None = Field(None, max_length=64)
    disposition: str | None = Field(None, max_length=64)
    notes: str | None = Field(None, max_length=5000)

    @field_validator("phone_number")
    @classmethod
    def _phone(cls, value: str) -> str:
        number = normalize_phone(value) or (value if _E164.fullmatch(value) else None)
        if number is None:
            raise ValueError("expected a phone number in E.164 form, e.g. +16175550142")
        return number

    @field_validator("started_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class RetentionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    retention_days: int = Field(description="30, 90 or 180; longer (up to 3650) only with the caller's consent.")
    consent: bool | None = Field(None, description="Record the caller's consent to longer retention.")


class ContactOut(BaseModel):
    contact_id: str
    name: str
    phone: str
    email: str | None
    tier: str | None
    city: str | None
    source: str


class TicketOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    call_id: str
    customer_id: str | None
    caller_number: str | None
    subject: str
    body: str
    status: str
    created_at: datetime


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    actor: str
    action: str
    target: str
    detail: dict[str, Any]
