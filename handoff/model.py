"""The handoff's data: who calls, what the agent sees, who the agents are, what a supervisor sees."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any


class AgentStatus(StrEnum):
    """An agent's state; moves between them are the table in `handoff.states`."""

    AVAILABLE = "available"
    RINGING = "ringing"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    AWAY = "away"
    OFFLINE = "offline"


class HandoffState(StrEnum):
    """A queue entry's state; moves between them are the table in `handoff.states`."""

    WAITING = "waiting"
    OFFERED = "offered"
    CONNECTED = "connected"
    ENDED = "ended"
    ABANDONED = "abandoned"
    OVERFLOWED = "overflowed"
    CLOSED = "closed"
    RETURNED_TO_BOT = "returned_to_bot"


FINAL_CALL_STATES = frozenset({HandoffState.ENDED, HandoffState.ABANDONED, HandoffState.OVERFLOWED,
                               HandoffState.CLOSED, HandoffState.RETURNED_TO_BOT})


@dataclass(frozen=True)
class Contact:
    """The customer record found by the caller's number."""

    contact_id: str
    name: str
    phone: str
    email: str | None = None
    tier: str | None = None
    city: str | None = None
    source: str = "backoffice"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Contact:
        def text(key: str) -> str | None:
            value = data.get(key)
            return None if value is None else str(value)

        return cls(str(data["contact_id"]), str(data.get("name") or ""), str(data.get("phone") or ""),
                   text("email"), text("tier"), text("city"), str(data.get("source") or "backoffice"))


@dataclass(frozen=True)
class RecentOrder:
    """One of the caller's recent orders, as the screen pop shows it."""

    number: str
    status: str
    ordered: str  # ISO date
    total: str  # with its currency, as the order system writes it
    items: str  # "2 x Kettle, 1 x Toaster"


@dataclass(frozen=True)
class TranscriptLine:
    """One turn of the bot conversation, with its time (Unix seconds)."""

    role: str  # user | bot | system
    text: str
    timestamp: float
    intent: str | None = None
    confidence: float | None = None
    dtmf: str | None = None


@dataclass(frozen=True)
class IntentScore:
    """An intent the bot recognised, how sure it was, and when."""

    intent: str
    confidence: float
    timestamp: float


@dataclass(frozen=True)
class HandoffContext:
    """Everything the agent sees when the call rings: who, what was said, why the bot handed over."""

    call_id: str
    queue: str
    priority: int
    caller_number: str | None
    contact: Contact | None
    language: str
    transcript: tuple[TranscriptLine, ...]
    intents: tuple[IntentScore, ...]
    slots: dict[str, Any]
    ivr_path: tuple[str, ...]
    reason: str
    summary: str
    requested_at: float
    wait_s: float = 0.0  # the wait so far, when this copy was made
    recent_orders: tuple[RecentOrder, ...] = ()  # the caller's latest orders (by their number), newest first

    def waited(self, now: float) -> HandoffContext:
        """A copy with the wait so far filled in."""
        return replace(self, wait_s=round(max(0.0, now - self.requested_at), 3))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (written by hand: `asdict` deep-copies and is the router's hot spot)."""
        contact = self.contact
        return {
            "call_id": self.call_id, "queue": self.queue, "priority": self.priority,
            "caller_number": self.caller_number, "contact": None if contact is None else {
                "contact_id": contact.contact_id, "name": contact.name, "phone": contact.phone,
                "email": contact.email, "tier": contact.tier, "city": contact.city, "source": contact.source},
            "language": self.language,
            "transcript": [{"role": t.role, "text": t.text, "timestamp": t.timestamp, "intent": t.intent,
                            "confidence": t.confidence, "dtmf": t.dtmf} for t in self.transcript],
            "intents": [{"intent": i.intent, "confidence": i.confidence, "timestamp": i.timestamp}
                        for i in self.intents],
            "slots": dict(self.slots), "ivr_path": list(self.ivr_path), "reason": self.reason,
            "summary": self.summary, "requested_at": self.requested_at, "wait_s": self.wait_s,
            "recent_orders": [{"number": o.number, "status": o.status, "ordered": o.ordered, "total": o.total,
                               "items": o.items} for o in self.recent_orders],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HandoffContext:
        contact = data.get("contact")
        return cls(
            call_id=str(data["call_id"]), queue=str(data["queue"]), priority=int(data["priority"]),
            caller_number=data.get("caller_number"),
            contact=Contact.from_dict(contact) if contact else None,
            language=str(data.get("language") or "en"),
            transcript=tuple(TranscriptLine(**t) for t in data.get("transcript") or ()),
            intents=tuple(IntentScore(**i) for i in data.get("intents") or ()),
            slots=dict(data.get("slots") or {}), ivr_path=tuple(data.get("ivr_path") or ()),
            reason=str(data.get("reason") or ""), summary=str(data.get("summary") or ""),
            requested_at=float(data["requested_at"]), wait_s=float(data.get("wait_s") or 0.0),
            recent_orders=tuple(RecentOrder(**o) for o in data.get("recent_orders") or ()),
        )


@dataclass(frozen=True)
class QueuedCall:
    """A call waiting in a queue, as `HandoffService.request` returns it and a supervisor sees it."""

    call_id: str
    queue: str
    priority: int
    state: HandoffState
    position: int  # 1 = next; 0 once an agent has it
    expected_wait_s: float | None  # None: not known (no agent serves the queue right now)
    enqueued_at: float
    wait_s: float = 0.0
    caller_number: str | None = None
    agent_id: str | None = None


@dataclass(frozen=True)
class Agent:
    """A person who takes calls: skills map a queue name to a level (1 = junior ... 5 = expert)."""

    agent_id: str
    name: str
    skills: dict[str, int] = field(default_factory=dict)
    created_at: float = 0.0
    expires_at: float | None = None
    # Besides the browser desktop, a phone that rings for this agent's calls: "sip" (a softphone or desk phone
    # that registers to callpilot as user agent_id), "sip:user@host[:port]" (a phone at a fixed address), or a
    # number ("+8613812345678") dialled through the SIP trunk. None: the desktop only.
    phone: str | None = None

    def level(self, queue: str) -> int:
        """0 when the agent lacks the skill."""
        return self.skills.get(queue, 0)


@dataclass(frozen=True)
class AgentView:
    """An agent as the supervisor page shows it."""

    agent_id: str
    name: str
    skills: dict[str, int]
    status: AgentStatus
    since: float | None  # when the agent entered `status`; None: never signed in
    online: bool
    call_id: str | None = None
    calls_taken: int = 0  # since the floor's Redis began (the fewest-calls strategy counts these)
    calls_today: int = 0  # in the floor's day (handoff.timezone)
    occupancy: float | None = None  # busy / (signed in - away) today; None before a minute signed in


@dataclass(frozen=True)
class QueueView:
    """One queue on the supervisor page."""

    name: str
    open: bool
    strategy: str
    waiting: tuple[QueuedCall, ...]
    longest_wait_s: float
    agents_available: int
    agents_logged_in: int
    handle_s: float = 0.0  # the average talk + wrap-up time the expected waits use (measured, else configured)


@dataclass(frozen=True)
class LiveCall:
    """A caller connected to an agent (`on_hold`: the agent put them on hold)."""

    call_id: str
    queue: str
    agent_id: str
    caller_number: str | None
    connected_at: float
    on_hold: bool = False


@dataclass(frozen=True)
class CallbackRequest:
    """A caller who chose to be called back rather than wait: call `number` about `queue`.

    callpilot dials it (`callpilot.callbacks`): at `due_at` (None: as soon as an agent of the queue is free),
    within the queue's hours. `state`: pending (waiting for its time, or for the retry at `next_attempt_at`),
    dialling, completed (answered: the callback joined the queue with the original `context` and `priority`),
    failed (no answer or busy `attempts` times), done (a supervisor took it off the list)."""

    call_id: str
    number: str
    queue: str
    requested_at: float
    reason: str = "overflow"
    due_at: float | None = None
    priority: int = 3
    context: dict[str, Any] | None = None  # the original call's HandoffContext.to_dict()
    state: str = "pending"
    attempts: int = 0
    next_attempt_at: float = 0.0
    outcomes: tuple[str, ...] = ()  # each attempt's result: answered, busy, no_answer, ...
    callback_call_id: str | None = None  # the call that reached the caller

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["outcomes"] = list(self.outcomes)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CallbackRequest:
        due = data.get("due_at")
        return cls(str(data["call_id"]), str(data["number"]), str(data["queue"]), float(data["requested_at"]),
                   str(data.get("reason") or "overflow"), None if due is None else float(due),
                   int(data.get("priority") or 3), data.get("context") or None, str(data.get("state") or "pending"),
                   int(data.get("attempts") or 0), float(data.get("next_attempt_at") or 0.0),
                   tuple(str(o) for o in data.get("outcomes") or ()), data.get("callback_call_id") or None)


@dataclass(frozen=True)
class SupervisorView:
    """The whole floor at one moment."""

    at: float
    queues: tuple[QueueView, ...]
    agents: tuple[AgentView, ...]
    live_calls: tuple[LiveCall, ...]
    callbacks: tuple[CallbackRequest, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
