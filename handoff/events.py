"""Typed updates: what a waiting caller hears about, and what an agent's desktop is told.

They travel over Redis pub/sub as JSON (`encode` / `decode_call_update` / `decode_agent_update`),
so the voice pipeline and the desktop may run in another process than the router."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal

from handoff.model import AgentStatus, HandoffContext

LeftReason = Literal["hangup", "hand_back", "disconnected", "transfer", "transfer_out"]
OverflowAction = Literal["callback", "voicemail", "transfer"]


# What the caller's side hears about (HandoffService.call_events).


@dataclass(frozen=True)
class QueuePosition:
    """Still waiting: the voice side speaks the position, and the expected wait when it is known."""

    kind: ClassVar[str] = "queue_position"
    call_id: str
    position: int
    expected_wait_s: float | None  # None: not known (no agent serves the queue right now)


@dataclass(frozen=True)
class AgentConnected:
    """An agent accepted: bridge the audio."""

    kind: ClassVar[str] = "agent_connected"
    call_id: str
    agent_id: str
    name: str


@dataclass(frozen=True)
class AgentLeft:
    """The agent is gone; `requeued` says whether the call waits again (else the bot has it)."""

    kind: ClassVar[str] = "agent_left"
    call_id: str
    agent_id: str
    reason: LeftReason
    requeued: bool = False
    target: str | None = None  # transfer_out: the number or SIP address the caller is sent on to


@dataclass(frozen=True)
class Overflow:
    """Waited too long: offer a callback at `target`, take a voicemail, or transfer to `target`. With
    `choices`, the caller picks one by key (1, 2, 3 in order) and `action` is what happens without a key
    within `choice_timeout_s`; `backup` is the transfer number."""

    kind: ClassVar[str] = "overflow"
    call_id: str
    action: OverflowAction
    target: str | None
    choices: tuple[OverflowAction, ...] = ()
    choice_timeout_s: float = 0.0
    backup: str | None = None


@dataclass(frozen=True)
class Closed:
    """The queue is outside business hours; `opens_at` (Unix seconds) when known."""

    kind: ClassVar[str] = "closed"
    call_id: str
    queue: str
    opens_at: float | None


@dataclass(frozen=True)
class ReturnedToBot:
    """No agent can take the call (none logged in for the skill): the bot talks again."""

    kind: ClassVar[str] = "returned_to_bot"
    call_id: str
    reason: str


CallUpdate = QueuePosition | AgentConnected | AgentLeft | Overflow | Closed | ReturnedToBot


# What an agent's desktop is told (HandoffService.agent_events).


@dataclass(frozen=True)
class Offer:
    """A call rings at this agent until `expires_at` (Unix seconds)."""

    kind: ClassVar[str] = "offer"
    offer_id: str
    context: HandoffContext
    expires_at: float


@dataclass(frozen=True)
class OfferWithdrawn:
    """The offer stopped ringing: 'taken' by another agent, 'timeout', 'caller_hung_up', 'declined'."""

    kind: ClassVar[str] = "offer_withdrawn"
    offer_id: str
    call_id: str
    reason: str


@dataclass(frozen=True)
class CallEnded:
    """The agent's call ended: 'caller_hung_up', 'agent_hung_up', 'transferred', 'handed_back'."""

    kind: ClassVar[str] = "call_ended"
    call_id: str
    reason: str


@dataclass(frozen=True)
class StatusChanged:
    """The agent's state moved (by the agent, the router or a disconnect)."""

    kind: ClassVar[str] = "status_changed"
    agent_id: str
    status: AgentStatus
    previous: AgentStatus


@dataclass(frozen=True)
class ConsultUpdate:
    """An attended transfer's consultation call: dialling, talking (the agent hears the target), failed (with the
    outcome), ended (the target hung up or the agent cancelled), completed (the caller is with the target)."""

    kind: ClassVar[str] = "consult"
    call_id: str
    state: str
    target: str
    detail: str = ""


@dataclass(frozen=True)
class OnPhone:
    """The agent answered the call on their phone (the desktop shows it; its controls act on it)."""

    kind: ClassVar[str] = "on_phone"
    call_id: str


@dataclass(frozen=True)
class SignedOut:
    """A supervisor signed the agent out: the desktop closes and asks for the token again."""

    kind: ClassVar[str] = "signed_out"
    agent_id: str
    by: str = "supervisor"


AgentUpdate = Offer | OfferWithdrawn | CallEnded | StatusChanged | ConsultUpdate | OnPhone | SignedOut

_CALL_KINDS: dict[str, Any] = {c.kind: c for c in (QueuePosition, AgentConnected, AgentLeft, Overflow,
                                                    Closed, ReturnedToBot)}
_AGENT_KINDS: dict[str, Any] = {c.kind: c for c in (Offer, OfferWithdrawn, CallEnded, StatusChanged, ConsultUpdate,
                                                   OnPhone, SignedOut)}


def encode(update: CallUpdate | AgentUpdate) -> str:
    """JSON with a `kind` field."""
    if isinstance(update, Offer):
        data = {"offer_id": update.offer_id, "context": update.context.to_dict(), "expires_at": update.expires_at}
    else:
        data = asdict(update)
    return json.dumps({"kind": update.kind, **data}, separators=(",", ":"))


def to_dict(update: CallUpdate | AgentUpdate) -> dict[str, Any]:
    """The JSON form as a dict (what the web pages receive)."""
    result: dict[str, Any] = json.loads(encode(update))
    return result


def decode_call_update(text: str | bytes) -> CallUpdate:
    data = json.loads(text)
    cls = _CALL_KINDS.get(data.pop("kind", None))
    if cls is None:
        raise ValueError(f"not a call update: {text!r}")
    if cls is Overflow:
        data["choices"] = tuple(data.get("choices") or ())
    update: CallUpdate = cls(**data)
    return update


def decode_agent_update(text: str | bytes) -> AgentUpdate:
    data = json.loads(text)
    kind = data.pop("kind", None)
    cls = _AGENT_KINDS.get(kind)
    if cls is None:
        raise ValueError(f"not an agent update: {text!r}")
    if cls is Offer:
        data["context"] = HandoffContext.from_dict(data["context"])
    if cls is StatusChanged:
        data["status"], data["previous"] = AgentStatus(data["status"]), AgentStatus(data["previous"])
    update: AgentUpdate = cls(**data)
    return update
