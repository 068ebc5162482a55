"""The ACD loop: one asyncio task per process reads new handoffs, asks `acd.decide`, carries it out.

Several processes cooperate on one Redis: each stream entry is held by one router (consumer group),
a router keeps its entries' lease fresh (XCLAIM), takes over the entries of a router that went
silent (XAUTOCLAIM), and agents are reserved atomically (GETDEL), so nobody is rung twice."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

from handoff.acd import (
    Action,
    CloseCall,
    OverflowCall,
    QueueMemory,
    Ring,
    RingTimeout,
    SendPosition,
    decide,
)
from handoff.calls import CallRecord, Entry
from handoff.config import HandoffConfig
from handoff.events import QueuePosition, encode
from handoff.floor import Floor
from handoff.model import Agent, AgentStatus, CallState
from handoff.redis_conn import TRANSIENT

log = logging.getLogger("callpilot.handoff")


class Router:
    """Routes the calls this process holds; `tick()` is one pass, `run()` loops until stopped."""

    def __init__(self, floor: Floor, config: HandoffConfig, agents: Callable[[], Sequence[Agent]], *,
                 clock: Callable[[], float], consumer: str,
                 on_agent_lost: Callable[[str], Awaitable[None]], batch: int = 512) -> None:
        self._floor = floor
        self._config = config
        self._agents = agents
        self._clock = clock
        self.consumer = consumer
        self._on_agent_lost = on_agent_lost
        self._batch = batch
        self.owned: dict[str, Entry] = {}
        self._queues = sorted(config.queues)
        self._memory = {q: QueueMemory(rng=random.Random(config.queues[q].seed)) for q in self._queues}
        self._lease_checked_at: float | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Tick until `stop` is set; while Redis is unreachable, back off and try again (never crash)."""
        delay = 0.05
        block_ms = int(self._config.tick_s * 1000)
        while not stop.is_set():
            try:
                await self.tick(block_ms=block_ms)
                delay = 0.05
            except TRANSIENT as exc:
                log.warning("router %s: Redis unreachable (%s); retrying in %.2fs", self.consumer, exc, delay)
                await _sleep_or_stop(stop, delay)
                delay = min(2.0, delay * 2)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("router %s: tick failed", self.consumer)
                await _sleep_or_stop(stop, 0.5)

    async def tick(self, *, block_ms: int | None = None) -> list[Action]:
        """Read new entries, refresh/claim leases, decide and act for every queue. Returns the actions."""
        calls = self._floor.calls
        for entry in await calls.read_new(self.consumer, self._queues, count=self._batch, block_ms=block_ms):
            self.owned[entry.call_id] = entry
        now = self._clock()
        lease = self._config.router_lease_s
        if self._lease_checked_at is None or now - self._lease_checked_at >= lease / 3:
            self._lease_checked_at = now
            if self.owned:
                await calls.keep_alive(self.consumer, list(self.owned.values()))
            for entry in await calls.take_over(self.consumer, self._queues, lease_ms=int(lease * 1000)):
                log.info("router %s took over call %s", self.consumer, entry.call_id)
                self.owned[entry.call_id] = entry
        if not self.owned:
            return []
        records = await self._live_records()
        agents = self._agents()
        snapshot = await self._floor.presence.snapshot(agents)
        for agent, runtime in snapshot:
            if runtime.status is not AgentStatus.OFFLINE and not agent.online:
                log.info("agent %s: heartbeat expired", agent.agent_id)
                await self._on_agent_lost(agent.agent_id)
        snaps = [s for s, _ in snapshot]
        actions: list[Action] = []
        for queue in self._queues:
            mine = [r.waiting_call() for r in records.values() if r.queue == queue]
            if not mine:
                continue
            qc = self._config.queues[queue]
            is_open = qc.hours.is_open(now) if qc.hours else True
            opens_at = qc.hours.next_opening(now) if qc.hours and not is_open else None
            actions += decide(queue, qc, mine, snaps, now, self._memory[queue], is_open=is_open,
                              opens_at=opens_at)
        await self._carry_out(actions, records)
        return actions

    async def _live_records(self) -> dict[str, CallRecord]:
        """Records of the calls this router still routes; stale and finished entries are let go."""
        calls = self._floor.calls
        records = await calls.many(list(self.owned))
        live: dict[str, CallRecord] = {}
        for call_id, entry in list(self.owned.items()):
            record = records.get(call_id)
            if record is None or record.gen != entry.gen or record.state not in (CallState.WAITING,
                                                                                   CallState.OFFERED):
                del self.owned[call_id]
                await calls.drop_entry(entry)
                continue
            if record.hung_up:
                await self._floor.caller_gone(record)
                continue
            live[call_id] = record
        return live

    async def _carry_out(self, actions: Sequence[Action], records: dict[str, CallRecord]) -> None:
        """Timeouts, overflows and closings first (a timed-out call may ring the next agent at once)."""
        positions: list[SendPosition] = []
        rings: list[Ring] = []
        for action in actions:
            record = records[action.call_id]
            if isinstance(action, RingTimeout):
                if await self._floor.ring_timeout(record, action.offer_id, action.agent_ids):
                    records[action.call_id] = replace(record, state=CallState.WAITING, offer_id=None,
                                                      offered_to=())
            elif isinstance(action, OverflowCall):
                await self._floor.overflow(record, action.action, action.target, action.withdraw_offer)
            elif isinstance(action, CloseCall):
                await self._floor.close(record, action.opens_at)
            elif isinstance(action, SendPosition):
                positions.append(action)
            elif isinstance(action, Ring):
                rings.append(action)
        rings = [r for r in rings if records[r.call_id].state is CallState.WAITING]
        if rings:
            await self._floor.ring(rings, records)
        if positions:
            await self._send_positions(positions)

    async def _send_positions(self, positions: Sequence[SendPosition]) -> None:
        floor, now = self._floor, self._clock()
        keys = floor.calls.keys
        r: Any = floor.calls.client
        async with r.pipeline(transaction=False) as pipe:
            for p in positions:
                text = encode(QueuePosition(p.call_id, p.position, p.expected_wait_s))
                pipe.publish(keys.call_channel(p.call_id), text)
                pipe.hset(keys.call(p.call_id), mapping={"position_sent_at": now, "position": p.position,
                                                         "expected_wait_s": p.expected_wait_s})
            await pipe.execute()


async def _sleep_or_stop(stop: asyncio.Event, delay: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), delay)
