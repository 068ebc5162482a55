"""The one explicit, JSON-serialisable state of a conversation."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

MODES = ("speech", "ivr", "handoff", "ended")
# Conversation modes as a transition table: current mode -> modes it may move to.
# A handed-over caller may come back to the bot (hand back) or to the menus; an
# ended conversation never restarts (a new call gets a new state).
MODE_TRANSITIONS: dict[str, frozenset[str]] = {
    "speech": frozenset({"speech", "ivr", "handoff", "ended"}),
    "ivr": frozenset({"ivr", "speech", "handoff", "ended"}),
    "handoff": frozenset({"handoff", "speech", "ivr", "ended"}),
    "ended": frozenset({"ended"}),
}


class IllegalModeTransition(ValueError):
    """A conversation was asked to move between modes the table does not allow."""


@dataclass
class Turn:
    """One line of the transcript: who said what, when, and how it was understood."""

    role: str  # user | bot | system
    text: str
    timestamp: float
    intent: str | None = None
    confidence: float | None = None
    dtmf: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Turn:
        return cls(**data)


@dataclass
class IntentSeen:
    """An intent the NLU recognised during the conversation, with its confidence."""

    intent: str
    confidence: float
    timestamp: float

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IntentSeen:
        return cls(**data)


@dataclass
class PendingConfirmation:
    """An action waiting for the caller to say yes (run it) or no (drop it)."""

    action: str
    prompt: str
    on_deny: str | None = None  # response to say when the caller declines

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PendingConfirmation:
        return cls(**data)


def _plain(value: object) -> dict[str, Any]:
    """A transcript line, an intent seen or a pending confirmation as JSON sees it."""
    if isinstance(value, Turn | IntentSeen | PendingConfirmation):
        return vars(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


@dataclass
class ConversationState:
    """Everything the bot remembers about one caller; saved after every turn."""

    sender_id: str
    caller_number: str | None = None
    channel: str = "rest"
    mode: str = "speech"
    slots: dict[str, Any] = field(default_factory=dict)
    active_form: str | None = None
    requested_slot: str | None = None
    form_failures: dict[str, int] = field(default_factory=dict)
    last_completed_form: str | None = None
    consecutive_fallbacks: int = 0
    consecutive_no_input: int = 0
    last_bot_messages: list[str] = field(default_factory=list)
    last_action: str | None = None
    transcript: list[Turn] = field(default_factory=list)
    intents_seen: list[IntentSeen] = field(default_factory=list)
    response_counts: dict[str, int] = field(default_factory=dict)
    ivr_state: dict[str, Any] | None = None
    ivr_path: list[str] = field(default_factory=list)
    started_at: float = 0.0
    last_activity_at: float = 0.0
    pending_confirmation: PendingConfirmation | None = None
    latest_handoff: dict[str, Any] | None = None
    session_count: int = 1
    # Customers this caller proved to be (customer id -> how: caller_number, postcode, phone_last4); kept for
    # the rest of the conversation, never carried into a new session.
    verified: dict[str, str] = field(default_factory=dict)
    # The caller's language: chosen with a key or detected from what they say, per turn (None: not yet known,
    # the line's default is spoken); `language_offered`: the "press 1 for ..." language menu was said.
    language: str | None = None
    language_offered: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A deep copy as plain data."""
        return asdict(self)

    def to_json(self) -> str:
        """The same JSON as `json.dumps(to_dict())`, without the deep copy `asdict` makes of every transcript line
        first (it was most of a turn's CPU on a conversation of a few hundred lines)."""
        return json.dumps(vars(self), ensure_ascii=False, sort_keys=True, default=_plain)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConversationState:
        values = dict(data)
        values["transcript"] = [Turn.from_dict(t) for t in data.get("transcript", [])]
        values["intents_seen"] = [IntentSeen.from_dict(i) for i in data.get("intents_seen", [])]
        pending = data.get("pending_confirmation")
        values["pending_confirmation"] = (
            PendingConfirmation.from_dict(pending) if pending is not None else None
        )
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> ConversationState:
        return cls.from_dict(json.loads(text))

    @classmethod
    def new(
        cls, sender_id: str, *, now: float, caller_number: str | None = None, channel: str = "rest"
    ) -> ConversationState:
        """A fresh conversation that starts at `now`."""
        return cls(
            sender_id=sender_id,
            caller_number=caller_number,
            channel=channel,
            started_at=now,
            last_activity_at=now,
        )

    def filled_slots(self) -> dict[str, Any]:
        return {k: v for k, v in self.slots.items() if v is not None}

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown conversation mode {mode!r}")
        if mode not in MODE_TRANSITIONS[self.mode]:
            raise IllegalModeTransition(f"conversation {self.sender_id}: {self.mode} -> {mode} is not allowed")
        self.mode = mode
