"""A caller whose process died (no more beats from its voice pipeline) is ended as `caller_lost`: the agent on
the call sees it end, a waiting entry leaves the queue, the records hear of it; calls that beat, and calls
whose caller side never beat, are left alone."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import fakeredis
import pytest
from fakeredis import aioredis as fake_aioredis

from handoff.events import ReturnedToBot
from handoff.model import AgentStatus, HandoffState
from handoff.testing import decision, make_floor

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_caller_side_that_stops_beating_is_ended_for_the_agent_and_the_queue(tmp_path: Path) -> None:
    client = fake_aioredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
    floor = make_floor(client, tmp_path)
    service = floor.service
    outcomes: list[dict[str, Any]] = []

    async def sink(outcome: dict[str, Any]) -> None:
        outcomes.append(outcome)

    service.callers._sink = sink
    service.callers.ttl_s = 1.0
    await service.start(run_router=False)
    (ann,) = await floor.staff(("Ann", {"orders": 3}))
    updates = service.agent_events(ann.agent_id)
    seen: list[Any] = []

    async def listen() -> None:
        async for update in updates:
            seen.append(update)

    listening = asyncio.ensure_future(listen())
    await service.request("talking", decision(created_at=floor.clock.now))
    await service.router.tick()
    offer = (await service.presence.state(ann.agent_id)).offer_id
    assert offer is not None and offer.startswith("talking")
    await service.accept(ann.agent_id, offer)
    await service.caller_here("waiting")  # the pipeline says it once before it asks (then its process dies)
    for call_id in ("waiting", "untracked", "beating"):  # Ann is busy: these wait
        await service.request(call_id, decision(created_at=floor.clock.now))
    await service.router.tick()
    for call_id in ("talking", "beating"):
        await service.caller_here(call_id)
    await asyncio.sleep(0.5)
    await service.caller_here("beating")
    assert await service.callers.check(["talking", "waiting", "untracked", "beating"]) == []  # all still here
    await asyncio.sleep(0.7)
    await service.caller_here("beating")
    lost = await service.callers.check(["talking", "waiting", "untracked", "beating"])
    assert sorted(lost) == ["talking", "waiting"]
    assert await service.callers.check(["talking", "waiting"]) == []  # ended once, not again
    await asyncio.sleep(0.1)
    ended = [u for u in seen if getattr(u, "kind", "") == "call_ended"]
    assert [(u.call_id, u.reason) for u in ended] == [("talking", "caller_lost")]
    assert (await service.presence.state(ann.agent_id)).status is AgentStatus.WRAP_UP
    records = await service.calls.many(["talking", "waiting", "untracked", "beating"])
    assert records["talking"].state is HandoffState.ENDED and records["waiting"].state is HandoffState.ABANDONED
    assert records["untracked"].state is HandoffState.WAITING and records["beating"].state is HandoffState.WAITING
    # A caller side that was only slow (a loaded process) hears it has the bot again, never silence on hold.
    for call_id in ("talking", "waiting"):
        told = await service.feed.current(records[call_id])
        assert isinstance(told, ReturnedToBot) and told.call_id == call_id, told
    assert [(o["kind"], o["call_id"], o["agent_id"]) for o in outcomes] == [
        ("caller_lost", "talking", ann.agent_id), ("caller_lost", "waiting", None)]
    listening.cancel()
    await service.stop()


def test_the_records_close_a_lost_call_as_interrupted(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import select

    from callpilot.records.models import CallRecord
    from callpilot.records.projection import RecordEvent
    from callpilot.records.writer import store_events
    from tests.records_fixtures import sqlite_database

    db = sqlite_database(tmp_path)
    t0 = datetime(2026, 12, 4, 9, tzinfo=UTC)
    with db.session() as session:
        store_events(session, [
            RecordEvent("lost-1", "started", t0, {"transport": "twilio", "caller": "+16175550142"}),
            RecordEvent("lost-1", "handoff", t0 + timedelta(seconds=20), {"reason": "caller_asked", "skill": "orders"}),
            RecordEvent("lost-1", "agent_connected", t0 + timedelta(seconds=30), {"agent_id": "ann"}),
            RecordEvent("lost-1", "caller_lost", t0 + timedelta(seconds=90), {"agent_id": "ann", "queue": "orders"}),
            RecordEvent("lost-1", "wrap_up", t0 + timedelta(seconds=100), {"agent_id": "ann", "disposition": "no_answer"}),
        ], retention_days=30)
    with db.session() as session:
        row = session.scalar(select(CallRecord).where(CallRecord.call_id == "lost-1"))
        assert row is not None
        assert (row.status, row.end_reason, row.duration_s, row.talk_s) == ("interrupted", "caller_lost", 90.0, 60.0)
        assert row.disposition == "no_answer"


async def test_a_caller_side_gone_silent_is_never_rung_even_before_the_watch_ends_it(tmp_path: Path) -> None:
    client = fake_aioredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
    floor = make_floor(client, tmp_path)
    service = floor.service
    service.callers.ttl_s = 0.2
    await service.start(run_router=False)
    await service.caller_here("gone")  # beat once, then the process died
    await service.request("gone", decision(created_at=floor.clock.now))
    await asyncio.sleep(0.3)
    (ann,) = await floor.staff(("Ann", {"orders": 3}))  # free now
    await service.router.tick()
    state = await service.presence.state(ann.agent_id)
    assert state.status is AgentStatus.AVAILABLE and state.offer_id is None  # nobody rung for a lost caller
    await service.stop()
