"""The ACD loop: one asyncio task per process reads new handoffs, asks `acd.decide`, carries it out.

Several processes cooperate on one Redis: each stream entry is held by one router (consumer group),
a router keeps its entries' lease fresh (XCLAIM), takes over the entries of a router that went
silent (XAUTOCLAIM), and agents are reserved atomically (GETDEL), so nobody is rung twice."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

import redis

from handoff.acd import (
    Action,
    CloseCall,
    NobodySignedIn,
    OverflowCall,
    QueueMemory,
    Ring,
    RingTimeout,
    SendPosition,
    decide,
)
from handoff.calls import Entry, HandoffCall
from handoff.config import HandoffConfig
from handoff.events import QueuePosition, encode
from handoff.handle_times import HandleTimes
from handoff.model import Agent, AgentStatus, HandoffState
from handoff.moves import CallMoves
from handoff.presence import AgentRuntime
from handoff.queue_settings import LiveQueues
from handoff.redis_conn import TRANSIENT
from handoff.strategies import AgentSnapshot

log = logging.getLogger("callpilot.handoff")


class Router:
    """Routes the calls this process holds; `tick()` is one pass, `run()` loops until stopped."""

    def __init__(self, moves: CallMoves, config: HandoffConfig, agents: Callable[[], Sequence[Agent]], *,
                 clock: Callable[[], float], consumer: str,
                 on_agent_lost: Callable[[str], Awaitable[None]], batch: int = 512,
                 handle_times: HandleTimes | None = None, live: LiveQueues | None = None) -> None:
        self._moves = moves
        self._config = config  # with `live`: re-read each pass, so supervisors' queue changes apply at once
        self._queue_settings = live
        self._agents = agents
        self._clock = clock
        self.consumer = consumer
        self._on_agent_lost = on_agent_lost
        self._handle_times = handle_times
        self._handle_s: dict[str, float] = {}  # measured handle times per queue, re-read with the agents
        self._batch = batch
        self.owned: dict[str, Entry] = {}
        self._queues = sorted(config.queues)
        self._memory = {q: QueueMemory(rng=random.Random(config.queues[q].seed)) for q in self._queues}
        self._lease_checked_at: float | None = None
        self._records: dict[str, HandoffCall] = {}
        self._snapshot: list[AgentSnapshot] = []
        self._synced_at: float | None = None  # the next full re-read (monotonic); None: at once
        self.groups_recreated = 0  # times Redis lost the consumer groups and the router made them again

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
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc) and "requires the key to exist" not in str(exc):  # (fakeredis' words)
                    log.exception("router %s: tick failed", self.consumer)
                    await _sleep_or_stop(stop, 0.5)
                    continue
                # Redis lost its data (a restart without persistence, a failover): the queues' consumer
                # groups are gone. Make them again and go on; entries still in the streams are read anew.
                log.warning("router %s: consumer groups missing (%s); creating them again", self.consumer, exc)
                await self._moves.calls.ensure_groups(self._queues)
                self.owned.clear()
                self.groups_recreated += 1
            except Exception:
                log.exception("router %s: tick failed", self.consumer)
                await _sleep_or_stop(stop, 0.5)

    async def tick(self, *, block_ms: int | None = None) -> list[Action]:
        """Read new entries, refresh/claim leases, decide and act for every queue. Returns the actions.

        The calls' records and the agents' states are re-read from Redis every `resync_s`; in between
        the router works from its own view (new entries are read at once), which is safe because every
        contested move is settled in Redis (GETDEL of an agent, SET NX of an offer)."""
        calls = self._moves.calls
        new = await calls.read_new(self.consumer, self._queues, count=self._batch, block_ms=block_ms)
        for entry in new:
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
                new.append(entry)
        if not self.owned:
            self._records = {}
            return []
        # Re-read everything when due, but not while new calls wait to be offered (unless long overdue).
        due = self._synced_at is None or time.monotonic() >= self._synced_at
        if due and (not new or self._synced_at is None or time.monotonic() >= self._synced_at + 1.0
                    or not self._config.resync_s):
            began = time.monotonic()
            self._records = await self._live_records(list(self.owned), known=self._records)
            self._snapshot = [s for s, _ in await self._agent_states()]
            if self._handle_times is not None:
                self._handle_s = await self._handle_times.all()
            # Never spend more than about a fifth of the time re-reading (a big floor under load);
            # resync_s 0 re-reads on every pass.
            every = self._config.resync_s
            self._synced_at = began + (max(every, 4 * (time.monotonic() - began)) if every else 0.0)
        elif new:
            self._records.update({e.call_id: e.record() for e in new if e.waiting})
            self._records.update(await self._live_records([e.call_id for e in new if not e.waiting]))
        records = self._records
        if self._queue_settings is not None:  # one HGETALL a pass: a supervisor's change applies to the next offer
            self._config = await self._queue_settings.effective()
        actions: list[Action] = []
        agents = self._snapshot
        for queue in self._queues:
            mine = [r.waiting_call() for r in records.values() if r.queue == queue]
            if not mine:
                continue
            qc = self._config.queues[queue]
            is_open = qc.is_open(now)
            opens_at = None if is_open else qc.next_opening(now)
            decided = decide(queue, qc, mine, agents, now, self._memory[queue], is_open=is_open,
                             opens_at=opens_at, handle_s=self._handle_s.get(queue))
            # An agent with several skills rings for one call a pass, not for one in each of its queues.
            rung = {agent_id for action in decided if isinstance(action, Ring) for agent_id in action.agent_ids}
            if rung:
                agents = [_with_status(a, AgentStatus.RINGING) if a.agent_id in rung else a for a in agents]
            actions += decided
        await self._carry_out(actions, records, now)
        return actions

    async def _agent_states(self) -> list[tuple[AgentSnapshot, AgentRuntime]]:
        """Every agent's state; agents whose heartbeat expired are handled as disconnected."""
        snapshot = await self._moves.presence.snapshot(self._agents())
        for agent, runtime in snapshot:
            if runtime.status is not AgentStatus.OFFLINE and not agent.online:
                log.info("agent %s: heartbeat expired", agent.agent_id)
                await self._on_agent_lost(agent.agent_id)
        return snapshot

    async def _live_records(self, call_ids: Sequence[str], *, known: dict[str, HandoffCall] | None = None
                            ) -> dict[str, HandoffCall]:
        """Records of the calls this router still routes; stale and finished entries are let go.
        Calls already `known` have only the fields others change re-read."""
        calls = self._moves.calls
        known = {c: known[c] for c in call_ids if c in known} if known else {}
        records = await calls.refresh(known) if known else {}
        records.update(await calls.many([c for c in call_ids if c not in records], light=True))
        live: dict[str, HandoffCall] = {}
        for call_id in call_ids:
            entry = self.owned[call_id]
            record = records.get(call_id)
            if record is None or record.gen != entry.gen or record.state not in (HandoffState.WAITING,
                                                                                   HandoffState.OFFERED):
                del self.owned[call_id]
                await calls.drop_entry(entry)
                continue
            if record.hung_up:
                await self._moves.caller_gone(record)
                continue
            live[call_id] = record
        return live

    async def _carry_out(self, actions: Sequence[Action], records: dict[str, HandoffCall], now: float) -> None:
        """Timeouts, overflows and closings first (a timed-out call may ring the next agent at once);
        the router's own view follows what it did."""
        positions: list[SendPosition] = []
        rings: list[Ring] = []
        freed: set[str] = set()
        for action in actions:
            record = records.get(action.call_id)
            if record is None:  # settled by an earlier action of this pass (a ring timeout that lost its race)
                continue
            if isinstance(action, RingTimeout):
                if await self._moves.ring_timeout(record, action.offer_id, action.agent_ids):
                    records[action.call_id] = replace(
                        record, state=HandoffState.WAITING, offer_id=None, offered_to=(),
                        tried=tuple(dict.fromkeys(record.tried + action.agent_ids)))
                    freed.update(action.agent_ids)
                else:
                    records.pop(action.call_id, None)  # settled elsewhere: re-read it next pass
                    self._synced_at = None
            elif isinstance(action, OverflowCall):
                # Re-read: between two re-reads an agent may have answered it or the caller hung up.
                if await self._moves.overflow(await self._moves.calls.get(action.call_id), action.action,
                                              action.target, action.withdraw_offer, choices=action.choices,
                                              choice_timeout_s=action.choice_timeout_s, backup=action.backup):
                    freed.update(action.agent_ids)
                else:
                    log.info("router %s: call %s was settled elsewhere before its overflow", self.consumer,
                             action.call_id)
                    self._synced_at = None  # the router's view is behind: re-read it next pass
                self._forget(action.call_id)  # out of `records` too: it is the router's own view
            elif isinstance(action, CloseCall):
                await self._moves.close(record, action.opens_at)
                self._forget(action.call_id)
            elif isinstance(action, NobodySignedIn):
                await self._moves.nobody_signed_in(action)
                self._forget(action.call_id)
            elif isinstance(action, SendPosition):
                positions.append(action)
                records[action.call_id] = replace(record, position_sent_at=now, position=action.position)
            elif isinstance(action, Ring):
                rings.append(action)
        rings = [r for r in rings if r.call_id in records and records[r.call_id].state is HandoffState.WAITING]
        ringing: set[str] = set()
        if rings:
            for ring in await self._moves.ring(rings):
                record = records[ring.call_id]
                records[ring.call_id] = replace(record, state=HandoffState.OFFERED, offer_id=ring.offer_id,
                                                offered_to=ring.agent_ids, offer_expires_at=ring.expires_at,
                                                offer_seq=int(ring.offer_id.rpartition(":")[2]))
                ringing.update(ring.agent_ids)
        if freed or rings:
            self._snapshot = [_with_status(a, AgentStatus.RINGING if a.agent_id in ringing else
                                           AgentStatus.AVAILABLE if a.agent_id in freed else None)
                              for a in self._snapshot]
        if positions:
            await self._send_positions(positions)

    def _forget(self, call_id: str) -> None:
        self._records.pop(call_id, None)
        self.owned.pop(call_id, None)

    async def _send_positions(self, positions: list[SendPosition]) -> None:
        moves, now = self._moves, self._clock()
        keys = moves.calls.keys
        r: Any = moves.calls.client
        positions = [p for p in positions if p.call_id in self._records]  # not overflowed in this pass
        # The place in the whole queue (ZRANK by priority then arrival), not only among this router's calls.
        async with r.pipeline(transaction=False) as pipe:
            for p in positions:
                pipe.zrank(keys.waiting(self._records[p.call_id].queue), p.call_id)
            ranks = await pipe.execute()
        # No rank: the call left the queue since the router's last re-read (an agent took it, the caller hung up):
        # a position now would reach a caller already talking to an agent.
        positions = [p if rank + 1 == p.position else
                     SendPosition(p.call_id, rank + 1, None if p.expected_wait_s is None else
                                  round(p.expected_wait_s * (rank + 1) / p.position, 1))
                     for p, rank in zip(positions, ranks, strict=True) if rank is not None]
        async with r.pipeline(transaction=False) as pipe:
            for p in positions:
                text = encode(QueuePosition(p.call_id, p.position, p.expected_wait_s))
                pipe.publish(keys.call_channel(p.call_id), text)
                pipe.hset(keys.call(p.call_id), mapping={
                    "position_sent_at": now, "position": p.position,
                    "expected_wait_s": "" if p.expected_wait_s is None else p.expected_wait_s})
            await pipe.execute()


def _with_status(agent: AgentSnapshot, status: AgentStatus | None) -> AgentSnapshot:
    if status is None or (status is AgentStatus.AVAILABLE and agent.status is not AgentStatus.RINGING):
        return agent
    return replace(agent, status=status)


async def _sleep_or_stop(stop: asyncio.Event, delay: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), delay)
