"""What a supervisor sees: every queue with its waiting calls in order, every agent, every live call."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import redis.asyncio as aredis

from handoff.acd import expected_wait
from handoff.calls import CallBook, HandoffCall
from handoff.config import HandoffConfig, QueueConfig
from handoff.model import (
    Agent,
    AgentStatus,
    AgentView,
    CallbackRequest,
    HandoffState,
    LiveCall,
    QueuedCall,
    QueueView,
    SupervisorView,
)
from handoff.presence import Presence
from handoff.redis_conn import Keys, as_str


async def floor_view(client: aredis.Redis, keys: Keys, calls: CallBook, presence: Presence,
                     agents: Sequence[Agent], config: HandoffConfig, now: float, *,
                     handle_s: Mapping[str, float] | None = None,
                     callbacks: tuple[CallbackRequest, ...] = ()) -> SupervisorView:
    """The whole floor at `now`, read from Redis (so it is the same from every process)."""
    measured = handle_s or {}
    pairs = await presence.snapshot(agents)
    today = await presence.today([(s.agent_id, r) for s, r in pairs])
    views = tuple(AgentView(s.agent_id, s.name, s.skills, s.status if s.online else AgentStatus.OFFLINE,
                            r.since or None, s.online, r.call_id, r.calls_taken, today[s.agent_id].calls,
                            today[s.agent_id].occupancy)
                  for s, r in pairs)
    queues = []
    for name, qc in sorted(config.queues.items()):
        ids = [as_str(m) for m in await client.zrange(keys.waiting(name), 0, -1)]
        records = await calls.many(ids)
        waiting = sorted((r for r in records.values() if r.state in (HandoffState.WAITING, HandoffState.OFFERED)),
                         key=lambda r: r.waiting_call().sort_key())
        serving = [v for v in views if v.online and v.skills.get(name, 0) > 0]
        handle = measured.get(name)
        queued = tuple(_queued(r, i, now, len(serving), qc, handle) for i, r in enumerate(waiting, start=1))
        queues.append(QueueView(name, qc.is_open(now), qc.strategy, queued,
                                max((c.wait_s for c in queued), default=0.0),
                                sum(1 for v in serving if v.status is AgentStatus.AVAILABLE), len(serving),
                                qc.average_handle_s if handle is None else handle))
    live_ids = sorted(as_str(k) for k in await client.hkeys(keys.live_calls))
    live = await calls.many(live_ids)
    async with client.pipeline(transaction=False) as pipe:
        for call_id in live:
            pipe.hget(keys.call(call_id), "on_hold")
        held = dict(zip(live, await pipe.execute(), strict=True))
    return SupervisorView(now, tuple(queues), views, tuple(
        LiveCall(r.call_id, r.queue, r.agent_id or "", r.context.caller_number, r.connected_at or 0.0,
                 held.get(r.call_id) == "1")
        for r in live.values() if r.state is HandoffState.CONNECTED), callbacks)


def _queued(record: HandoffCall, position: int, now: float, serving: int, config: QueueConfig,
            handle_s: float | None) -> QueuedCall:
    return QueuedCall(record.call_id, record.queue, record.priority, record.state, position,
                      expected_wait(position, serving, config, handle_s), record.enqueued_at,
                      round(now - record.enqueued_at, 3), record.context.caller_number,
                      record.offered_to[0] if record.offered_to else None)
