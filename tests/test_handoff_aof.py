"""Redis with AOF (appendonly yes, fsync every write) restarted mid-handoff loses no queue entry: a private
redis-server on a free port is killed (SIGKILL: no chance to save) and started again on the same folder; the
waiting call is still in its queue, and the router offers it to the agent who signs in."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
import redis.asyncio as aredis

from handoff.config import HandoffConfig
from handoff.model import AgentStatus, HandoffState
from handoff.testing import decision, make_floor
from tests.redis_fixtures import PrivateRedis, private_redis  # noqa: F401  (the `private` fixture)

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is needed")


def test_a_killed_redis_with_aof_keeps_the_waiting_call(private: PrivateRedis, tmp_path: Path) -> None:
    async def before() -> str:
        client = aredis.Redis.from_url(private.url, decode_responses=True)
        floor = make_floor(client, tmp_path, config=HandoffConfig(), prefix="aof:")
        await floor.service.start(run_router=False)
        [ann] = await floor.staff(("Ann", {"orders": 3}))
        await floor.service.set_status(ann.agent_id, AgentStatus.AWAY)  # signed in: the call waits
        await floor.service.request("call-aof", decision(created_at=floor.clock.now))
        await client.aclose()
        return ann.agent_id

    agent_id = asyncio.run(before())
    private.kill()  # SIGKILL: only what the AOF already holds survives
    private.start()

    async def after() -> tuple[HandoffState, str | None]:
        client = aredis.Redis.from_url(private.url, decode_responses=True)
        floor = make_floor(client, tmp_path, config=HandoffConfig(), prefix="aof:")
        await floor.service.start(run_router=False)
        record = await floor.service.calls.get("call-aof")
        await floor.service.set_status(agent_id, AgentStatus.AVAILABLE)
        await floor.service.heartbeat(agent_id)
        for _ in range(10):
            await floor.service.router.tick()
            if (await floor.ringing([agent_id]))[agent_id]:
                break
        ringing = (await floor.ringing([agent_id]))[agent_id]
        await client.aclose()
        return record.state, ringing

    state, ringing = asyncio.run(after())
    assert state is HandoffState.WAITING and ringing == "call-aof:1"  # still queued, and offered after the restart
