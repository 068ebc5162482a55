"""A harness for handoff tests and the benchmark: a controllable clock, a floor of agents, a caller."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aredis

from bot.dialogue.handoff import HandoffDecision
from handoff.config import HandoffConfig
from handoff.contacts import BackOfficeContacts, BackOfficeOrders, ContactLookup
from handoff.directory import AgentDirectory
from handoff.model import Agent, AgentStatus
from handoff.redis_conn import Keys
from handoff.service import HandoffService


@dataclass
class FakeClock:
    """Time that moves only when the test says so."""

    now: float = 1_800_000_000.0  # Friday 2027-01-15 08:00 UTC

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def decision(*, skill: str = "orders", priority: int = 3, caller: str | None = "+16175550142",
             reason: str = "caller_asked", created_at: float = 0.0, **extra: Any) -> HandoffDecision:
    """A handoff decision as the bot makes it, with a short conversation."""
    transcript = extra.pop("transcript", (
        {"role": "user", "text": "where is my order", "timestamp": created_at - 20, "intent":
         "check_order_status", "confidence": 0.93, "dtmf": None},
        {"role": "bot", "text": "What is your order number?", "timestamp": created_at - 19, "intent": None,
         "confidence": None, "dtmf": None},
        {"role": "user", "text": "I want to talk to a person", "timestamp": created_at - 5, "intent":
         "talk_to_human", "confidence": 0.88, "dtmf": None}))
    return HandoffDecision(
        reason=reason, skill=skill, priority=priority, caller_number=caller, transcript=tuple(transcript),
        intents=tuple(extra.pop("intents", ({"intent": "check_order_status", "confidence": 0.93,
                                               "timestamp": created_at - 20},
                                              {"intent": "talk_to_human", "confidence": 0.88,
                                               "timestamp": created_at - 5}))),
        slots=dict(extra.pop("slots", {"order_number": "48215"})),
        ivr_path=tuple(extra.pop("ivr_path", ("main", "orders"))),
        summary=str(extra.pop("summary", "Caller wants an agent about order 48215.")),
        sender_id="test", created_at=created_at)


@dataclass
class Floor:
    """A service on its own key prefix with a fake clock, and helpers to staff it."""

    service: HandoffService
    clock: FakeClock
    directory: AgentDirectory
    tokens: dict[str, str] = field(default_factory=dict)

    def hire(self, name: str, skills: dict[str, int]) -> Agent:
        agent, token = self.directory.add(name, skills)
        self.tokens[agent.agent_id] = token
        return agent

    async def staff(self, *names_and_skills: tuple[str, dict[str, int]]) -> list[Agent]:
        """Hire agents and log them in (available), each a second apart (so idle order is known)."""
        agents = []
        for name, skills in names_and_skills:
            agent = self.hire(name, skills)
            await self.service.set_status(agent.agent_id, AgentStatus.AVAILABLE)
            self.clock.advance(1)
            agents.append(agent)
        return agents

    async def status(self, agent_id: str) -> AgentStatus:
        return (await self.service.presence.state(agent_id)).status

    async def ringing(self, agent_ids: Sequence[str]) -> dict[str, str | None]:
        """agent id -> the offer ringing at it (None when not ringing)."""
        out = {}
        for agent_id in agent_ids:
            state = await self.service.presence.state(agent_id)
            out[agent_id] = state.offer_id if state.status is AgentStatus.RINGING else None
        return out


def make_floor(client: aredis.Redis, tmp: Path, *, config: HandoffConfig | None = None,
               prefix: str | None = None, clock: FakeClock | None = None,
               contacts: ContactLookup | None = None, consumer: str = "router-1",
               directory: AgentDirectory | None = None,
               redact: Callable[[str], str] | None = None) -> Floor:
    clock = clock or FakeClock()
    config = config or HandoffConfig()
    if "resync_s" not in config.model_fields_set:
        config = config.model_copy(update={"resync_s": 0.0})  # every tick sees what the test just did
    directory = directory or AgentDirectory(tmp / "agents.json", clock=clock)
    service = HandoffService(client, config=config, directory=directory,
                             contacts=contacts or BackOfficeContacts(), clock=clock,
                             keys=Keys(prefix or f"test:{uuid.uuid4().hex[:10]}:"), consumer=consumer,
                             redact=redact, orders=BackOfficeOrders())
    return Floor(service, clock, directory)


REAL_REDIS_URL = "redis://127.0.0.1:6379"


async def cleanup(client: aredis.Redis, prefix: str) -> None:
    """Delete every key under a test's prefix (on a real server shared with other tests)."""
    keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
    if keys:
        await client.delete(*keys)


class KeyTable:
    """A `SupervisorAuth` over a table of API key -> role with sessions in memory, for the desk's tests
    (callpilot's is `ApiKeySessions`, on the records database). Removing a key from `roles` revokes it."""

    def __init__(self, roles: dict[str, str], *, secure_cookie: bool = False) -> None:
        self.roles = roles
        self.secure_cookie = secure_cookie
        self.sessions: dict[str, str] = {}  # session id -> key
        self.audited: list[tuple[str, str, str, dict[str, Any]]] = []  # (key, action, target, detail)

    async def role_of_key(self, key: str) -> str | None:
        return self.roles.get(key)

    async def open_session(self, key: str) -> str:
        session_id = uuid.uuid4().hex
        self.sessions[session_id] = key
        return session_id

    async def role_of_session(self, session_id: str) -> str | None:
        key = self.sessions.get(session_id)
        return None if key is None else self.roles.get(key)

    async def close_session(self, session_id: str) -> None:
        self.sessions.pop(session_id, None)

    async def audit(self, credential: tuple[str, str], action: str, target: str, detail: dict[str, Any]) -> None:
        kind, value = credential
        self.audited.append((value if kind == "key" else self.sessions.get(value, "?"), action, target, detail))
