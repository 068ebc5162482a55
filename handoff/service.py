"""`HandoffService`: the one facade the voice pipeline, the agent desktop and the supervisor page use.

Everything lives in Redis (queues as Streams with a consumer group, agent presence with expiring
heartbeats, offers claimed with SET NX, events over pub/sub `callpilot:events:*`), so several callpilot
processes on one Redis share the floor. The routing decisions are pure (`handoff.acd`); this class
and `handoff.router` only move data between Redis and those decisions."""

from __future__ import annotations

from collections.abc import AsyncIterator

from bot.dialogue.handoff import HandoffDecision
from handoff.errors import (
    HandoffError,
    IllegalTransition,
    NotYourCall,
    OfferTaken,
    RedisUnavailable,
    UnknownAgent,
    UnknownCall,
    UnknownQueue,
)
from handoff.events import (
    AgentConnected,
    AgentLeft,
    AgentUpdate,
    CallEnded,
    CallUpdate,
    Closed,
    Offer,
    OfferWithdrawn,
    Overflow,
    QueuePosition,
    ReturnedToBot,
    StatusChanged,
)
from handoff.model import (
    Agent,
    AgentStatus,
    AgentView,
    CallState,
    Contact,
    HandoffContext,
    IntentScore,
    LiveCall,
    QueuedCall,
    QueueView,
    SupervisorView,
    TranscriptLine,
)

__all__ = [
    "Agent", "AgentConnected", "AgentLeft", "AgentStatus", "AgentUpdate", "AgentView", "CallEnded",
    "CallState", "CallUpdate", "Closed", "Contact", "HandoffContext", "HandoffError", "HandoffService",
    "IllegalTransition", "IntentScore", "LiveCall", "NotYourCall", "Offer", "OfferTaken", "OfferWithdrawn",
    "Overflow", "QueuePosition", "QueueView", "QueuedCall", "RedisUnavailable", "ReturnedToBot",
    "StatusChanged", "SupervisorView", "TranscriptLine", "UnknownAgent", "UnknownCall", "UnknownQueue",
]


class HandoffService:
    """Queues, agents and offers on Redis. `start()` runs the router task; `stop()` ends it."""

    async def start(self) -> None:
        """Connect (raises RedisUnavailable with the URL), create consumer groups, start the router."""
        raise NotImplementedError

    async def stop(self) -> None:
        """Stop the router task; pending queue entries stay in Redis for the next router."""
        raise NotImplementedError

    # The caller's side (voice pipeline).

    async def request(self, call_id: str, decision: HandoffDecision, *, language: str = "en") -> QueuedCall:
        """Build the context (contact looked up by number) and enqueue on the skill's queue."""
        raise NotImplementedError

    def call_events(self, call_id: str) -> AsyncIterator[CallUpdate]:
        """Updates for one waiting/connected call until it leaves the handoff."""
        raise NotImplementedError

    async def caller_hung_up(self, call_id: str) -> None:
        raise NotImplementedError

    # The agent's side (desktop).

    async def authenticate(self, token: str) -> Agent:
        """The agent with this token; UnknownAgent for an unknown or expired token."""
        raise NotImplementedError

    async def set_status(self, agent_id: str, status: AgentStatus) -> None:
        """available / away / offline by the agent; IllegalTransition for any other move."""
        raise NotImplementedError

    async def heartbeat(self, agent_id: str) -> None:
        raise NotImplementedError

    async def accept(self, agent_id: str, offer_id: str) -> HandoffContext:
        """Take the ringing call; OfferTaken if another agent was first or the offer is gone."""
        raise NotImplementedError

    async def decline(self, agent_id: str, offer_id: str) -> None:
        raise NotImplementedError

    async def transfer(self, agent_id: str, call_id: str, *, queue: str | None = None,
                       to_agent: str | None = None) -> None:
        """Put the call in another queue (front) or offer it to one agent."""
        raise NotImplementedError

    async def hand_back(self, agent_id: str, call_id: str) -> None:
        """The bot takes the call again."""
        raise NotImplementedError

    async def hang_up(self, agent_id: str, call_id: str) -> None:
        raise NotImplementedError

    async def wrap_up(self, agent_id: str, call_id: str, disposition: str, notes: str) -> None:
        """Record the outcome; the agent becomes available again."""
        raise NotImplementedError

    async def agent_disconnected(self, agent_id: str) -> None:
        """The browser went away: the live call goes back to the queue (front) or to the bot."""
        raise NotImplementedError

    def agent_events(self, agent_id: str) -> AsyncIterator[AgentUpdate]:
        raise NotImplementedError

    # The supervisor's side.

    async def snapshot(self) -> SupervisorView:
        raise NotImplementedError
