"""Agent presence and state in Redis: one hash per agent, a heartbeat key that expires, and a `free`
key that exists exactly while the agent is available (the router takes it with GETDEL, so two
routers can never ring the same agent for two calls)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aredis

from handoff.errors import IllegalHandoffTransition
from handoff.events import StatusChanged, encode
from handoff.model import Agent, AgentStatus
from handoff.redis_conn import Keys, as_str
from handoff.shift import DAY_TTL_S, ShiftToday, day_start, shift_today, tally
from handoff.states import agent_next
from handoff.strategies import AgentSnapshot

_BECOMES_IDLE = frozenset({"login", "ready"})
_FIELDS = ("status", "since", "idle_since", "calls_taken", "call_id", "offer_id", "login_at")


@dataclass(frozen=True)
class AgentRuntime:
    """An agent's live state as stored in Redis."""

    status: AgentStatus
    since: float
    idle_since: float
    calls_taken: int
    call_id: str | None
    offer_id: str | None
    login_at: float = 0.0  # when the agent last signed in (0: offline)


def _runtime(data: Mapping[Any, Any]) -> AgentRuntime:
    """Missing fields (None from HMGET) read as an agent who never logged in."""
    return AgentRuntime(status=AgentStatus(data.get("status") or "offline"), since=float(data.get("since") or 0),
                        idle_since=float(data.get("idle_since") or 0),
                        calls_taken=int(data.get("calls_taken") or 0), call_id=data.get("call_id") or None,
                        offer_id=data.get("offer_id") or None, login_at=float(data.get("login_at") or 0))


class Presence:
    """Reads and moves agent states; every move goes through the table in `handoff.states`."""

    def __init__(self, client: aredis.Redis, keys: Keys, *, heartbeat_ttl_s: float,
                 clock: Callable[[], float], day_zone: str = "UTC") -> None:
        self._r = client
        self._keys = keys
        self.day_zone = day_zone  # whose midnight starts an agent's day (handoff.shift)
        self._ttl_ms = int(heartbeat_ttl_s * 1000)
        self._clock = clock

    async def state(self, agent_id: str) -> AgentRuntime:
        return _runtime(await self._r.hgetall(self._keys.agent(agent_id)))

    async def heartbeat(self, agent_id: str) -> None:
        await self._r.set(self._keys.agent_alive(agent_id), "1", px=self._ttl_ms)

    async def transition(self, agent_id: str, event: str, *, expect_offer: str | None = None,
                         call_id: str | None = None, expect_call: str | None = None) -> AgentStatus | None:
        """Move the agent by `event`; None (no change) when `expect_offer` is no longer its offer, or when the
        agent is no longer on call `expect_call` (it left that call already, perhaps for another)."""
        key, free = self._keys.agent(agent_id), self._keys.agent_free(agent_id)
        for attempt in range(50):
            async with self._r.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(key, free)
                    data = await pipe.hgetall(key)
                    current = _runtime(data)
                    if current.status is AgentStatus.AVAILABLE and not await pipe.exists(free):
                        raise _BeingRung  # a router took it a moment ago; its write follows
                    if expect_offer is not None and current.offer_id != expect_offer:
                        return None
                    if expect_call is not None and (current.status is not AgentStatus.ON_CALL
                                                    or current.call_id != expect_call):
                        return None
                    new = agent_next(current.status, event)
                    now = self._clock()
                    fields: dict[Any, Any] = {"status": new.value, "since": now}
                    if event in _BECOMES_IDLE or (new is AgentStatus.AVAILABLE and not data.get("idle_since")):
                        fields["idle_since"] = now
                    if event == "accept":
                        fields["calls_taken"] = current.calls_taken + 1
                        fields["call_id"] = call_id or ""
                    if new is not AgentStatus.RINGING:
                        fields["offer_id"] = ""
                    if new in (AgentStatus.AVAILABLE, AgentStatus.AWAY, AgentStatus.OFFLINE):
                        fields["call_id"] = ""
                    if current.status is AgentStatus.OFFLINE and new is not AgentStatus.OFFLINE:
                        fields["login_at"] = now
                    elif new is AgentStatus.OFFLINE:
                        fields["login_at"] = ""
                    day, midnight = day_start(now, self.day_zone)
                    added = tally(current.status, current.since, current.login_at, new, event, now, midnight)
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.hset(key, mapping=fields)
                    if added:
                        day_key = self._keys.agent_day(agent_id, day)
                        for name, amount in added.items():
                            pipe.hincrbyfloat(day_key, name, amount)
                        pipe.expire(day_key, DAY_TTL_S)
                    if new is AgentStatus.AVAILABLE:
                        pipe.set(free, "1")
                    else:
                        pipe.delete(free)
                    if new is AgentStatus.OFFLINE:
                        pipe.srem(self._keys.agents_online, agent_id)
                        pipe.delete(self._keys.agent_alive(agent_id))
                    else:
                        pipe.sadd(self._keys.agents_online, agent_id)
                    if event == "login":
                        pipe.set(self._keys.agent_alive(agent_id), "1", px=self._ttl_ms)
                    if new is not current.status:
                        text = encode(StatusChanged(agent_id, new, current.status))
                        pipe.publish(self._keys.agent_channel(agent_id), text)
                        pipe.publish(self._keys.supervisor_channel, text)
                    await pipe.execute()
                    return new
                except (redis.WatchError, _BeingRung):
                    await asyncio.sleep(0.002 * (attempt + 1))
        raise IllegalHandoffTransition("agent", "busy", event)

    async def reserve(self, agent_ids: Sequence[str]) -> list[bool]:
        """Take the `free` keys in one round trip: True where this caller got the agent."""
        async with self._r.pipeline(transaction=False) as pipe:
            for agent_id in agent_ids:
                pipe.getdel(self._keys.agent_free(agent_id))
            return [value is not None for value in await pipe.execute()]

    def mark_ringing(self, pipe: aredis.client.Pipeline, agent_id: str, offer_id: str, now: float) -> None:
        """Queue the writes that make a reserved agent ringing (part of the router's batch)."""
        pipe.hset(self._keys.agent(agent_id), mapping={"status": AgentStatus.RINGING.value, "since": now,
                                                          "offer_id": offer_id})
        text = encode(StatusChanged(agent_id, AgentStatus.RINGING, AgentStatus.AVAILABLE))
        pipe.publish(self._keys.agent_channel(agent_id), text)  # supervisors poll snapshot()

    async def today(self, runtimes: Sequence[tuple[str, AgentRuntime]]) -> dict[str, ShiftToday]:
        """Each agent's calls today and busy / away / signed-in time (occupancy), in one round trip."""
        now = self._clock()
        day, midnight = day_start(now, self.day_zone)
        async with self._r.pipeline(transaction=False) as pipe:
            for agent_id, _ in runtimes:
                pipe.hgetall(self._keys.agent_day(agent_id, day))
            stored = await pipe.execute()
        return {agent_id: shift_today(data, r.status, r.since, r.login_at, now, midnight)
                for (agent_id, r), data in zip(runtimes, stored, strict=True)}

    async def online_ids(self) -> list[str]:
        return sorted(as_str(m) for m in await self._r.smembers(self._keys.agents_online))

    async def snapshot(self, agents: Sequence[Agent]) -> list[tuple[AgentSnapshot, AgentRuntime]]:
        """Every given agent with its state and whether its heartbeat is alive (one HMGET each and
        one MGET of all heartbeat keys, in one round trip)."""
        if not agents:
            return []
        async with self._r.pipeline(transaction=False) as pipe:
            for agent in agents:
                pipe.hmget(self._keys.agent(agent.agent_id), _FIELDS)
            pipe.mget([self._keys.agent_alive(agent.agent_id) for agent in agents])
            raw = await pipe.execute()
        alive = raw[-1]
        out = []
        for i, agent in enumerate(agents):
            runtime = _runtime(dict(zip(_FIELDS, raw[i], strict=True)))
            out.append((AgentSnapshot(agent.agent_id, agent.name, agent.skills, runtime.status,
                                      runtime.idle_since, runtime.calls_taken, alive[i] is not None), runtime))
        return out


class _BeingRung(Exception):
    """Internal: the agent's free key is gone but its status write has not landed yet."""
