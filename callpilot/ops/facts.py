"""What the KPIs need to know about one call, as a frozen value; built from a `calls` row by `fact_from_record`.

The KPI functions only see `CallFact`s, so they are tested from hand-written values without a database.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from callpilot.records.models import CallRecord

# The channels whose records are phone calls: the pipeline's (voice) and those integrators report (api).
# Text conversations (the REST channel) have their own figures (`?channel=text`), not mixed into the calls'.
PHONE_CHANNELS = ("voice", "api")
CHANNEL_CHOICES: dict[str, tuple[str, ...] | None] = {
    "phone": PHONE_CHANNELS, "voice": ("voice",), "api": ("api",), "text": ("text",), "all": None}

# End reasons where callpilot, not the caller, ended a call that waited for an agent: not an abandonment.
NOT_ABANDONED = frozenset({"bot_hangup", "callback", "voicemail", "transfer", "overflow", "closed", "agent_hangup"})


@dataclass(frozen=True)
class CallFact:
    """One call's times and outcome. `offered_at`: queued for agents; `answered_at`: an agent picked it up."""

    call_id: str
    started_at: datetime
    ended_at: datetime | None = None
    offered_at: datetime | None = None
    answered_at: datetime | None = None
    talk_s: float | None = None  # agent talk time
    wrap_up_s: float | None = None  # agent after-call work
    caller_hung_up: bool = False  # the caller ended the call (rather than the bot, an agent or an overflow)
    intents: tuple[str, ...] = ()
    language: str | None = None  # the caller's (zh, en), None when they never spoke

    @property
    def offered(self) -> bool:
        return self.offered_at is not None

    @property
    def answered(self) -> bool:
        return self.offered_at is not None and self.answered_at is not None

    @property
    def abandoned(self) -> bool:
        """Offered to agents, and the caller hung up before one answered."""
        return self.offered and not self.answered and self.ended_at is not None and self.caller_hung_up

    @property
    def speed_of_answer_s(self) -> float | None:
        if self.offered_at is None or self.answered_at is None:
            return None
        return (self.answered_at - self.offered_at).total_seconds()

    def waiting_s(self, now: datetime) -> float | None:
        """How long the caller has been waiting for an agent, if they still are."""
        if self.offered_at is None or self.answered_at is not None or self.ended_at is not None:
            return None
        return max(0.0, (now - self.offered_at).total_seconds())


def _intent_names(raw: Sequence[Any]) -> tuple[str, ...]:
    """Intents are stored as names or as {"name"/"intent": ..., "confidence": ...} objects."""
    names = []
    for item in raw or ():
        if isinstance(item, str):
            names.append(item)
        elif isinstance(item, dict):
            name = item.get("name") or item.get("intent")
            if isinstance(name, str):
                names.append(name)
    return tuple(names)


def fact_from_record(row: CallRecord) -> CallFact:
    """The adapter from the `calls` row (helper C's projection of the call log).

    An agent answered when one was connected (`agent_id`); the answer time is the first connection
    (handoff + `wait_s`), since `agent_connected_at` is cleared when the agent transfers or hands back.
    Wrap-up time comes from `extra["wrap_up_s"]` when the desktop recorded it.
    """
    extra = row.extra or {}
    wrap_up = extra.get("wrap_up_s")
    reason = (row.end_reason or "").lower()
    answered_at = None
    if row.handoff_at is not None and row.agent_id is not None and row.status != "abandoned":
        if row.wait_s is not None:
            answered_at = row.handoff_at + timedelta(seconds=row.wait_s)
        else:
            answered_at = row.agent_connected_at or row.handoff_at
    return CallFact(
        call_id=row.call_id,
        started_at=row.started_at,
        ended_at=row.ended_at,
        offered_at=row.handoff_at,
        answered_at=answered_at,
        talk_s=row.talk_s,
        wrap_up_s=float(wrap_up) if isinstance(wrap_up, int | float) else None,
        caller_hung_up=row.ended_at is not None and reason not in NOT_ABANDONED,
        intents=_intent_names(row.intents),
        language=row.language,
    )


def load_facts(session: Session, start: datetime, end: datetime, *,
               channels: Collection[str] | None = PHONE_CHANNELS) -> list[CallFact]:
    """Calls started in [start, end), plus calls still waiting for an agent (for the longest wait);
    only records of `channels` (None: every channel)."""
    query = select(CallRecord).where(
        or_(
            (CallRecord.started_at >= start) & (CallRecord.started_at < end),
            CallRecord.handoff_at.is_not(None) & CallRecord.agent_id.is_(None) & CallRecord.ended_at.is_(None),
        )
    )
    if channels is not None:
        query = query.where(CallRecord.channel.in_(list(channels)))
    return [fact_from_record(row) for row in session.scalars(query.order_by(CallRecord.started_at))]
