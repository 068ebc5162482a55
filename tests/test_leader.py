"""One leader among several processes, on the real Redis: one of two contenders leads; a leader that stops hands
over at once, one that dies (no release, no renewal) within the key's lifetime; a Redis that cannot be asked
makes nobody the leader. Alert states outlive a change of leader."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aredis

from callpilot.leader import AlertStates, Leader
from handoff.testing import REAL_REDIS_URL

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_one_of_two_leads_and_the_other_takes_over_when_it_stops_or_dies() -> None:
    client = aredis.Redis.from_url(REAL_REDIS_URL, decode_responses=True)
    key = f"test:leader:{uuid.uuid4().hex}"
    try:
        a, b = Leader(lambda: client, key=key, ttl_s=0.6, me="a"), Leader(lambda: client, key=key, ttl_s=0.6, me="b")
        assert await a.step() and not await b.step()
        assert await a.step() and not await b.step()  # renewed, still a's
        await a.stop()  # a clean stop gives the key up at once
        assert await client.get(key) is None and not a.is_leader
        assert await b.step()

        c = Leader(lambda: client, key=key, ttl_s=0.6, me="c")
        assert not await c.step()
        await asyncio.sleep(0.8)  # b dies: it neither renews nor releases; its key expires
        assert await c.step() and await client.get(key) == "c"
        assert not await b.step()  # b comes back to find c leading: it does not take the key back
    finally:
        await client.delete(key)
        await client.aclose()


async def test_the_embedded_redis_keeps_one_leader_renewing() -> None:
    # No Redis server configured: the process's in-memory Redis (fakeredis, no Lua) must keep its leader leading
    # round after round - a renewal that needs EVAL lost the lead every other round and the once-only work stalled.
    from handoff.redis_conn import RedisLink

    link = RedisLink(None)
    leader = Leader(link.client, key=f"test:leader:{uuid.uuid4().hex}", ttl_s=0.6, me="solo")
    other = Leader(link.client, key=leader.key, ttl_s=0.6, me="other")
    try:
        assert all([await leader.step() for _ in range(5)]) and not await other.step()
        await leader.stop()
        assert await other.step()
    finally:
        await link.stop()


async def test_a_process_that_cannot_reach_redis_is_not_the_leader() -> None:
    gone = aredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    leader = Leader(lambda: gone, key="test:leader:unreachable", ttl_s=1.0)
    assert not await leader.step()
    assert not await Leader(lambda: None, key="x").step()  # no Redis yet (the handoff still starting)
    await gone.aclose()


async def test_alert_states_survive_a_change_of_leader() -> None:
    client = aredis.Redis.from_url(REAL_REDIS_URL, decode_responses=True)
    key = f"test:alerts:{uuid.uuid4().hex}"
    try:
        await AlertStates(lambda: client, key=key).save({"answer_rate": "firing", "asa": "ok"})
        assert await AlertStates(lambda: client, key=key).load() == {"answer_rate": "firing", "asa": "ok"}
        assert await AlertStates(lambda: client, key=f"{key}:none").load() == {}
    finally:
        await client.delete(key)
        await client.aclose()


async def test_only_the_leader_evaluates_alerts_and_a_new_leader_does_not_fire_them_again() -> None:
    """Process A leads and fires the long-wait alert; A dies, B takes over with the stored states: the alert is
    still firing, so B sends nothing until it resolves. A follower never evaluates."""
    from datetime import UTC, datetime

    from callpilot.ops.alerts import AlertBook, AlertMonitor, AlertState, Sample
    from callpilot.ops.config import AlertRule

    client = aredis.Redis.from_url(REAL_REDIS_URL, decode_responses=True)
    key = f"test:alerts:{uuid.uuid4().hex}"
    rule = AlertRule(name="longest_wait_high", metric="longest_wait_s", when="above", fire=60, clear=30)
    wait = {"s": 90.0}
    measured: list[str] = []

    def monitor(name: str, leading: dict[str, bool], heard: list[str]) -> AlertMonitor:
        async def measure(start: datetime, end: datetime) -> dict[str, Sample]:
            measured.append(name)
            return {"longest_wait_s": Sample(wait["s"], 1)}

        return AlertMonitor(AlertBook([rule]), measure, lambda change: heard.append(change.state.value),
                            clock=lambda: datetime(2026, 12, 4, 10, tzinfo=UTC), interval_s=0.01,
                            is_leader=lambda: leading["now"], states=AlertStates(lambda: client, key=key))

    try:
        a_leads, b_leads = {"now": True}, {"now": False}
        heard_a: list[str] = []
        heard_b: list[str] = []
        a, b = monitor("a", a_leads, heard_a), monitor("b", b_leads, heard_b)
        await a.round()
        await b.round()
        assert heard_a == ["firing"] and heard_b == [] and measured == ["a"]  # b follows: it measures nothing
        a_leads["now"], b_leads["now"] = False, True  # a died; b leads now
        await b.round()
        assert heard_b == [] and b.book.states["longest_wait_high"] is AlertState.FIRING  # no second alert.fired
        wait["s"] = 10.0
        await b.round()
        assert heard_b == ["ok"]  # b resolves it
    finally:
        await client.delete(key)
        await client.aclose()
