"""The Redis state engine, on fakeredis and on the real server: sessions, queue durability, presence,
atomic offers, tokens, and what happens when Redis is not there."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import fakeredis
import pytest
import redis
import redis.asyncio as aredis
from fakeredis import aioredis as fake_aioredis

from bot.dialogue.state import ConversationState
from handoff.config import HandoffConfig
from handoff.errors import OfferTaken, RedisUnavailable, UnknownAgent
from handoff.events import AgentConnected, Offer, OfferWithdrawn, QueuePosition
from handoff.model import AgentStatus, HandoffState
from handoff.redis_conn import Keys
from handoff.store import RedisSessionStore
from handoff.testing import REAL_REDIS_URL, FakeClock, cleanup, decision, make_floor
from tests.redis_fixtures import wait_subscribed

pytestmark = pytest.mark.anyio
BACKENDS = ["fakeredis", "redis"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def prefix() -> str:
    return f"test:{uuid.uuid4().hex[:12]}:"


@pytest.fixture(params=BACKENDS)
def server(request: pytest.FixtureRequest) -> fakeredis.FakeServer | None:
    """A fresh fakeredis server, or None for the real redis-server on localhost."""
    if request.param == "redis":
        try:
            redis.Redis.from_url(REAL_REDIS_URL, socket_connect_timeout=1).ping()
        except redis.ConnectionError:
            pytest.fail("no redis-server on 127.0.0.1:6379 (.ci/run starts one)")
        return None
    return fakeredis.FakeServer()


@pytest.fixture
async def client(server: fakeredis.FakeServer | None, prefix: str) -> AsyncIterator[aredis.Redis]:
    if server is None:
        real = aredis.Redis.from_url(REAL_REDIS_URL, decode_responses=True)
        yield real
        await cleanup(real, prefix)
        await real.aclose()
    else:
        yield fake_aioredis.FakeRedis(server=server, decode_responses=True)


@pytest.fixture
def sync_client(server: fakeredis.FakeServer | None, prefix: str) -> Iterator[redis.Redis]:
    if server is None:
        real = redis.Redis.from_url(REAL_REDIS_URL, decode_responses=True)
        yield real
        keys = list(real.scan_iter(match=f"{prefix}*"))
        if keys:
            real.delete(*keys)
    else:
        yield fakeredis.FakeRedis(server=server, decode_responses=True)


def config(**kw: object) -> HandoffConfig:
    return HandoffConfig.model_validate(kw)


# Sessions.

def test_conversation_state_round_trips_with_a_ttl(sync_client: redis.Redis, prefix: str) -> None:
    store = RedisSessionStore(sync_client, ttl_s=600, keys=Keys(prefix))
    state = ConversationState(sender_id="caller-1", caller_number="+16175550142", slots={"order_number": "48215"})
    store.save(state)
    loaded = store.load("caller-1")
    assert loaded is not None and loaded.slots == {"order_number": "48215"}
    assert 0 < sync_client.ttl(f"{prefix}session:caller-1") <= 600
    store.delete("caller-1")
    assert store.load("caller-1") is None and store.raw("caller-1") is None


class FlakyRedis(fakeredis.FakeRedis):
    """A Redis that can be switched off, like a server restart."""

    down = False

    def execute_command(self, *args, **options):  # type: ignore[no-untyped-def]
        if self.down:
            raise redis.ConnectionError("Connection refused")
        return super().execute_command(*args, **options)


def test_sessions_survive_a_redis_outage_and_resync() -> None:
    flaky = FlakyRedis(server=fakeredis.FakeServer(), decode_responses=True)
    store = RedisSessionStore(flaky, ttl_s=60)
    flaky.down = True
    store.save(ConversationState(sender_id="c1", slots={"step": 1}))  # no crash
    assert store.unsynced == 1
    assert store.load("c1").slots == {"step": 1}  # type: ignore[union-attr]  # the call goes on
    flaky.down = False
    assert store.load("c1").slots == {"step": 1}  # type: ignore[union-attr]
    assert store.unsynced == 0 and '"step": 1' in (store.raw("c1") or "").replace('":1', '": 1')


# Queue durability: a router dies, another takes over.

async def test_a_router_killed_while_ringing_loses_nothing(client: aredis.Redis, prefix: str, tmp_path: Path
                                                          ) -> None:
    cfg = config(router_lease_s=0.05, queues={"orders": {"strategy": "linear", "agent_order": ["ann", "bob"],
                                                          "ring_timeout_s": 10}})
    clock = FakeClock()
    one = make_floor(client, tmp_path, config=cfg, prefix=prefix, clock=clock, consumer="router-1")
    await one.service.start(run_router=False)
    await one.staff(("Ann", {"orders": 3}), ("Bob", {"orders": 3}))
    await one.service.request("call-1", decision(created_at=clock.now))
    await one.service.router.tick()
    assert await one.ringing(["ann", "bob"]) == {"ann": "call-1:1", "bob": None}
    # router-1 dies here: it never acknowledges, never ticks again; Ann does not answer.
    two = make_floor(client, tmp_path, config=cfg, prefix=prefix, clock=clock, consumer="router-2",
                     directory=one.directory)
    await asyncio.sleep(0.1)  # longer than the 50 ms lease
    await two.service.router.tick()
    assert "call-1" in two.service.router.owned
    clock.advance(10)
    await two.service.router.tick()  # Ann let it ring out: Bob rings
    assert await two.ringing(["ann", "bob"]) == {"ann": None, "bob": "call-1:2"}
    context = await two.service.accept("bob", "call-1:2")
    assert context.call_id == "call-1" and context.wait_s == 10.0
    pending = await client.xpending(Keys(prefix).stream("orders"), "acd")
    assert pending["pending"] == 0  # acknowledged once an agent had it


async def test_an_entry_read_but_never_handled_is_claimed_and_offered(client: aredis.Redis, prefix: str,
                                                                      tmp_path: Path) -> None:
    cfg = config(router_lease_s=0.05)
    one = make_floor(client, tmp_path, config=cfg, prefix=prefix, consumer="router-1")
    await one.service.start(run_router=False)
    [cat] = await one.staff(("Cat", {"orders": 2}))
    await one.service.set_status(cat.agent_id, AgentStatus.AWAY)  # signed in, so the call waits
    await one.service.request("call-7", decision(created_at=one.clock.now))
    entries = await one.service.calls.read_new("router-1", ["orders"], count=10, block_ms=None)
    assert [e.call_id for e in entries] == ["call-7"]  # ... and router-1 crashes before doing anything
    two = make_floor(client, tmp_path, config=cfg, prefix=prefix, clock=one.clock, consumer="router-2",
                     directory=one.directory)
    await two.service.set_status(cat.agent_id, AgentStatus.AVAILABLE)
    await asyncio.sleep(0.1)
    await two.service.router.tick()
    assert await two.ringing([cat.agent_id]) == {"cat": "call-7:1"}


async def test_a_live_router_keeps_its_calls(client: aredis.Redis, prefix: str, tmp_path: Path) -> None:
    cfg = config(router_lease_s=30)
    one = make_floor(client, tmp_path, config=cfg, prefix=prefix, consumer="router-1")
    await one.service.start(run_router=False)
    [ann] = await one.staff(("Ann", {"orders": 2}))
    await one.service.set_status(ann.agent_id, AgentStatus.AWAY)  # signed in, so the call waits
    await one.service.request("call-1", decision(created_at=one.clock.now))
    await one.service.router.tick()
    two = make_floor(client, tmp_path, config=cfg, prefix=prefix, clock=one.clock, consumer="router-2",
                     directory=one.directory)
    await two.service.router.tick()
    assert list(one.service.router.owned) == ["call-1"] and not two.service.router.owned


# Presence.

async def test_an_agent_whose_heartbeat_expires_goes_offline_and_its_offer_moves_on(
        client: aredis.Redis, prefix: str, tmp_path: Path) -> None:
    floor = make_floor(client, tmp_path, config=config(heartbeat_ttl_s=0.05), prefix=prefix)
    await floor.service.start(run_router=False)
    await floor.staff(("Ann", {"orders": 3}))
    await floor.service.request("call-1", decision(created_at=floor.clock.now))
    await floor.service.router.tick()
    assert await floor.status("ann") is AgentStatus.RINGING
    await asyncio.sleep(0.1)  # no heartbeat: the browser is gone
    await floor.service.router.tick()
    assert await floor.status("ann") is AgentStatus.OFFLINE
    record = await floor.service.calls.get("call-1")
    assert record.state is HandoffState.WAITING and record.tried == ("ann",)


async def test_heartbeats_keep_an_agent_online(client: aredis.Redis, prefix: str, tmp_path: Path) -> None:
    floor = make_floor(client, tmp_path, config=config(heartbeat_ttl_s=0.3), prefix=prefix)
    await floor.service.start(run_router=False)
    await floor.staff(("Ann", {"orders": 3}))
    for _ in range(3):
        await asyncio.sleep(0.15)
        await floor.service.heartbeat("ann")
    await floor.service.router.tick()
    assert (await floor.service.snapshot()).agents[0].online
    assert await floor.status("ann") is AgentStatus.AVAILABLE


# Offers are taken once.

async def test_only_one_agent_gets_a_ringall_offer(client: aredis.Redis, prefix: str, tmp_path: Path) -> None:
    floor = make_floor(client, tmp_path, config=config(queues={"orders": {"strategy": "ringall"}}), prefix=prefix)
    await floor.service.start(run_router=False)
    agents = await floor.staff(("Ann", {"orders": 3}), ("Bob", {"orders": 3}), ("Cat", {"orders": 3}))
    await floor.service.request("call-1", decision(created_at=floor.clock.now))
    await floor.service.router.tick()
    assert set((await floor.ringing([a.agent_id for a in agents])).values()) == {"call-1:1"}
    results = await asyncio.gather(*(floor.service.accept(a.agent_id, "call-1:1") for a in agents),
                                   return_exceptions=True)
    winners = [a.agent_id for a, r in zip(agents, results, strict=True) if not isinstance(r, Exception)]
    losers = [r for r in results if isinstance(r, Exception)]
    assert len(winners) == 1 and len(losers) == 2
    assert all(isinstance(e, OfferTaken) and f"already taken by agent {winners[0]}" in str(e) for e in losers)
    statuses = {a.agent_id: await floor.status(a.agent_id) for a in agents}
    assert sorted(statuses.values()) == sorted([AgentStatus.ON_CALL, AgentStatus.AVAILABLE, AgentStatus.AVAILABLE])


async def test_the_losers_are_told_the_offer_was_taken(client: aredis.Redis, prefix: str, tmp_path: Path) -> None:
    floor = make_floor(client, tmp_path, config=config(queues={"orders": {"strategy": "ringall"}}), prefix=prefix)
    await floor.service.start(run_router=False)
    await floor.staff(("Ann", {"orders": 3}), ("Bob", {"orders": 3}))
    events = floor.service.agent_events("bob")
    first = asyncio.ensure_future(anext(events))
    await wait_subscribed(client, floor.service.keys.agent_channel("bob"))
    await floor.service.request("call-1", decision(created_at=floor.clock.now))
    await floor.service.router.tick()
    seen = [await asyncio.wait_for(first, 5)]
    await floor.service.accept("ann", "call-1:1")
    while not isinstance(seen[-1], OfferWithdrawn):
        seen.append(await asyncio.wait_for(anext(events), 5))
    await events.aclose()  # type: ignore[attr-defined]
    offers = [e for e in seen if isinstance(e, Offer)]
    assert offers and offers[0].context.caller_number == "+16175550142"
    assert seen[-1] == OfferWithdrawn("call-1:1", "call-1", "taken")


# Tokens and connections.

async def test_unknown_and_expired_tokens_are_refused(client: aredis.Redis, prefix: str, tmp_path: Path) -> None:
    floor = make_floor(client, tmp_path, prefix=prefix)
    agent, token = floor.directory.add("Ann Lee", {"orders": 3})
    assert await floor.service.authenticate(token) == agent
    with pytest.raises(UnknownAgent, match="unknown agent token"):
        await floor.service.authenticate("cpa_not-a-token")
    _, short = floor.directory.add("Temp Worker", {"general": 1}, expires_in_s=60)
    floor.clock.advance(61)
    with pytest.raises(UnknownAgent, match="expired"):
        await floor.service.authenticate(short)
    with pytest.raises(UnknownAgent):
        await floor.service.heartbeat("nobody")


async def test_redis_unreachable_at_start_is_a_clear_error(tmp_path: Path) -> None:
    url = "redis://127.0.0.1:1"
    floor = make_floor(aredis.Redis.from_url(url, socket_connect_timeout=0.5), tmp_path)
    floor.service._redis_url = url
    with pytest.raises(RedisUnavailable, match=r"cannot reach Redis at redis://127\.0\.0\.1:1"):
        await floor.service.start()


async def test_between_resyncs_a_router_offers_at_once_and_never_rings_for_a_gone_caller(
        client: aredis.Redis, prefix: str, tmp_path: Path) -> None:
    floor = make_floor(client, tmp_path, config=config(resync_s=60, queues={"orders": {"ring_timeout_s": 10}}),
                       prefix=prefix)
    await floor.service.start(run_router=False)
    await floor.staff(("Ann", {"orders": 3}))
    await floor.service.request("first", decision(created_at=floor.clock.now))
    await floor.service.router.tick()
    assert await floor.ringing(["ann"]) == {"ann": "first:1"}
    await floor.service.request("urgent", decision(priority=1, created_at=floor.clock.now))
    await floor.service.router.tick()  # read at once from the stream: waits, Ann is busy
    await floor.service.caller_hung_up("urgent")  # the router's view still has it waiting
    floor.clock.advance(10)
    await floor.service.router.tick()  # Ann let "first" ring out
    await floor.service.router.tick()  # the stale view picks Ann for "urgent": the ring sees it is gone
    assert (await floor.service.calls.get("urgent")).state is HandoffState.ABANDONED
    assert await floor.status("ann") is AgentStatus.AVAILABLE
    assert await client.exists(Keys(prefix).agent_free("ann"))  # given back, so she can ring again


class RedisProxy:
    """A TCP relay to the real Redis that can be cut and restored, like a network outage."""

    def __init__(self) -> None:
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        self._writers.clear()
        await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", 6379)
        self._writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@pytest.mark.parametrize("server", ["redis"], indirect=True)  # an outage needs a real server behind a socket
async def test_calls_go_on_through_a_redis_outage(server: fakeredis.FakeServer | None, prefix: str,
                                                 tmp_path: Path) -> None:
    proxy = RedisProxy()
    await proxy.start()
    url = f"redis://127.0.0.1:{proxy.port}"
    client = aredis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=0.5)
    direct = aredis.Redis.from_url(REAL_REDIS_URL, decode_responses=True)
    floor = make_floor(client, tmp_path, config=config(tick_s=0.05), prefix=prefix)
    try:
        await floor.service.start()  # the router task runs
        await floor.staff(("Ann", {"orders": 3}))
        await proxy.cut()
        await asyncio.sleep(0.3)  # the router hits the outage and backs off
        restore = asyncio.get_running_loop().call_later(0.5, lambda: asyncio.ensure_future(proxy.start()))
        queued = await floor.service.request("call-1", decision(created_at=floor.clock.now))  # retried
        assert queued.queue == "orders"
        pubsub = direct.pubsub()
        await pubsub.subscribe(Keys(prefix).agent_channel("ann"))
        offered = False
        while not offered:  # the router resumes on its own and rings Ann
            message = await asyncio.wait_for(pubsub.get_message(ignore_subscribe_messages=True, timeout=5), 10)
            offered = message is not None and '"kind":"offer"' in message["data"]
        await pubsub.aclose()
        restore.cancel()
        assert floor.service._task is not None and not floor.service._task.done()
    finally:
        await floor.service.stop()
        await cleanup(direct, prefix)
        await client.aclose()
        await direct.aclose()


async def test_without_a_redis_url_the_whole_process_shares_one_embedded_redis(tmp_path: Path, prefix: str) -> None:
    from callpilot.settings import Settings
    from handoff import build_service, build_session_store

    settings = Settings.load(None, {"CALLPILOT_STATE_DIR": str(tmp_path)})
    assert settings.redis_url is None
    web, voice = build_service(settings, keys=Keys(prefix)), build_service(settings, keys=Keys(prefix))
    await web.start(run_router=False)
    await voice.start(run_router=False)
    ann, _ = web.directory.add("Ann", {"orders": 3})
    await web.set_status(ann.agent_id, AgentStatus.AWAY)  # signed in (on a break), so the call waits
    await web.heartbeat(ann.agent_id)
    await voice.request("call-1", decision(created_at=0))
    orders = next(q for q in (await web.snapshot()).queues if q.name == "orders")
    assert [c.call_id for c in orders.waiting] == ["call-1"]
    build_session_store(settings, keys=Keys(prefix)).save(ConversationState(sender_id="s1", slots={"a": 1}))
    loaded = build_session_store(settings, keys=Keys(prefix)).load("s1")
    assert loaded is not None and loaded.slots == {"a": 1}


async def test_two_processes_share_one_floor_and_every_call_is_answered_once(
        client: aredis.Redis, prefix: str, tmp_path: Path) -> None:
    """Two services (two callpilot processes) with their routers running, agents' desktops on either."""
    cfg = config(tick_s=0.02, queues={"orders": {"strategy": "ringall"}})
    one = make_floor(client, tmp_path, config=cfg, prefix=prefix, consumer="router-1", clock=FakeClock())
    two = make_floor(client, tmp_path, config=cfg, prefix=prefix, consumer="router-2", clock=one.clock,
                     directory=one.directory)
    agents = await one.staff(*((f"Agent {n}", {"orders": 3}) for n in range(6)))
    calls, answered, wrapped, done = 30, [], [], asyncio.Event()

    async def desktop(service: Any, agent_id: str) -> None:
        async for update in service.agent_events(agent_id):
            if isinstance(update, Offer):
                try:
                    context = await service.accept(agent_id, update.offer_id)
                except OfferTaken:
                    continue
                answered.append((context.call_id, agent_id))
                await service.hang_up(agent_id, context.call_id)
                await service.wrap_up(agent_id, context.call_id, "resolved", "")
                wrapped.append(context.call_id)
                if len(wrapped) == calls:  # every desk done (not only the last call answered)
                    done.set()

    desks = [asyncio.create_task(desktop((one, two)[i % 2].service, a.agent_id)) for i, a in enumerate(agents)]
    await wait_subscribed(client, *(one.service.keys.agent_channel(a.agent_id) for a in agents))  # every desktop
    await one.service.start()
    await two.service.start()
    try:
        for n in range(calls):
            await (one, two)[n % 2].service.request(f"call-{n}", decision(created_at=one.clock.now))
        await asyncio.wait_for(done.wait(), 30)
    finally:
        for task in desks:
            task.cancel()
        await one.service.stop()
        await two.service.stop()
    assert sorted(c for c, _ in answered) == sorted(f"call-{n}" for n in range(calls))  # each exactly once
    records = await one.service.calls.many([f"call-{n}" for n in range(calls)])
    assert {r.state for r in records.values()} == {HandoffState.ENDED}
    view = await one.service.snapshot()
    assert sum(a.calls_taken for a in view.agents) == calls
    assert {a.status for a in view.agents} == {AgentStatus.AVAILABLE}
    assert (await client.xpending(Keys(prefix).stream("orders"), "acd"))["pending"] == 0


@pytest.mark.parametrize("server", ["redis"], indirect=True)  # an outage needs a real server behind a socket
async def test_a_waiting_caller_hears_the_agent_even_if_it_happened_during_an_outage(
        server: fakeredis.FakeServer | None, prefix: str, tmp_path: Path) -> None:
    proxy = RedisProxy()
    await proxy.start()
    voice_client = aredis.Redis.from_url(f"redis://127.0.0.1:{proxy.port}", decode_responses=True,
                                         socket_connect_timeout=0.5)
    direct = aredis.Redis.from_url(REAL_REDIS_URL, decode_responses=True)
    desk = make_floor(direct, tmp_path, prefix=prefix)  # the agents' process, which keeps its Redis
    voice = make_floor(voice_client, tmp_path, prefix=prefix, clock=desk.clock, directory=desk.directory)
    try:
        await desk.service.start(run_router=False)
        await desk.staff(("Ann", {"orders": 3}))
        await voice.service.request("call-1", decision(created_at=desk.clock.now))
        events = voice.service.call_events("call-1")
        # where the call stands when the voice side subscribes, then what happens next
        assert await asyncio.wait_for(anext(events), 5) == QueuePosition("call-1", 1, 180.0)
        first = asyncio.ensure_future(anext(events))
        await asyncio.sleep(0.1)
        await proxy.cut()  # the voice process loses Redis ...
        await desk.service.router.tick()
        await desk.service.accept("ann", "call-1:1")  # ... while Ann answers
        await asyncio.sleep(0.2)
        await proxy.start()
        assert await asyncio.wait_for(first, 10) == AgentConnected("call-1", "ann", "Ann")
        await events.aclose()  # type: ignore[attr-defined]
    finally:
        await cleanup(direct, prefix)
        await voice_client.aclose()
        await direct.aclose()


async def test_redis_losing_its_data_does_not_stop_the_router(client: aredis.Redis, prefix: str,
                                                              tmp_path: Path) -> None:
    """A Redis restart without persistence (or a failover) drops the streams and their consumer groups: the
    router makes them again (NOGROUP) and the next caller is offered as before."""
    floor = make_floor(client, tmp_path, config=config(), prefix=prefix)
    await floor.service.start()  # the router task, as in the app
    try:
        [ann] = await floor.staff(("Ann", {"orders": 3}))
        await asyncio.sleep(0.3)
        lost = [key async for key in client.scan_iter(match=f"{prefix}*")]
        await client.delete(*lost)  # everything under our prefix is gone
        for _ in range(50):
            if floor.service.router.groups_recreated:
                break
            await asyncio.sleep(0.05)
        assert floor.service.router.groups_recreated >= 1
        await floor.service.set_status(ann.agent_id, AgentStatus.AVAILABLE)  # Ann signs in again
        await floor.service.request("call-9", decision(created_at=floor.clock.now))
        for _ in range(100):
            if (await floor.ringing(["ann"]))["ann"]:
                break
            await asyncio.sleep(0.05)
        assert (await floor.ringing(["ann"]))["ann"] == "call-9:1"
    finally:
        await floor.service.stop()


async def test_a_caller_whose_queue_entry_vanished_goes_back_to_the_bot(client: aredis.Redis, prefix: str,
                                                                        tmp_path: Path) -> None:
    """Never on hold for ever: the call's record gone (Redis came back empty), the caller's feed says so."""
    from handoff.events import ReturnedToBot

    floor = make_floor(client, tmp_path, config=config(), prefix=prefix)
    await floor.service.start(run_router=False)
    [cat] = await floor.staff(("Cat", {"orders": 2}))
    await floor.service.set_status(cat.agent_id, AgentStatus.AWAY)  # signed in, so the call waits
    await floor.service.request("call-5", decision(created_at=floor.clock.now))
    floor.service.feed.lost_after_s = 1.0
    heard: list[object] = []

    async def follow() -> None:
        async for update in floor.service.call_events("call-5"):
            heard.append(update)

    following = asyncio.create_task(follow())
    await asyncio.sleep(0.3)
    assert [type(u).__name__ for u in heard] == ["QueuePosition"]
    await client.delete(Keys(prefix).call("call-5"))  # the queue entry vanished
    await asyncio.wait_for(following, 10)
    assert isinstance(heard[-1], ReturnedToBot) and "lost" in heard[-1].reason


async def test_a_router_that_stops_gives_its_calls_to_another_at_once(client: aredis.Redis, prefix: str,
                                                                      tmp_path: Path) -> None:
    """Shutdown: a process's waiting handoffs go to another process's router now, not after the 10 s lease."""
    cfg = config(router_lease_s=10.0)
    one = make_floor(client, tmp_path, config=cfg, prefix=prefix, consumer="router-1")
    await one.service.start(run_router=False)
    [cat] = await one.staff(("Cat", {"orders": 2}))
    await one.service.set_status(cat.agent_id, AgentStatus.AWAY)  # signed in, so the call waits
    await one.service.request("call-8", decision(created_at=one.clock.now))
    await one.service.router.tick()
    assert "call-8" in one.service.router.owned
    await one.service.stop()  # SIGTERM: the router gives its entries up
    two = make_floor(client, tmp_path, config=cfg, prefix=prefix, clock=one.clock, consumer="router-2",
                     directory=one.directory)
    await two.service.router.tick()
    assert "call-8" in two.service.router.owned  # at once, not after the lease


async def test_a_caller_told_of_the_agent_from_the_state_is_not_told_again_by_the_message(
        client: aredis.Redis, prefix: str, tmp_path: Path) -> None:
    """The agent answers between the caller's side subscribing and reading the call's state: the state says
    connected and the message arrives too. The caller hears it once (twice made the voice side hand the call
    back to the bot: 'agent_joined while agent', seen with two real processes)."""
    from handoff.events import AgentConnected, AgentLeft

    floor = make_floor(client, tmp_path, config=config(), prefix=prefix)
    await floor.service.start(run_router=False)
    try:
        await floor.staff(("Ann", {"orders": 3}))
        await floor.service.request("call-7", decision(created_at=floor.clock.now))
        await floor.service.router.tick()
        events = floor.service.call_events("call-7")
        await floor.service.accept("ann", "call-7:1")  # connected (state written) before the first read ...
        assert await asyncio.wait_for(anext(events), 5) == AgentConnected("call-7", "ann", "Ann")
        # ... and its message, published after the subscription, arrives as well: the same update again
        await floor.service.moves.tell_call("call-7", AgentConnected("call-7", "ann", "Ann"))
        await floor.service.moves.tell_call("call-7", AgentLeft("call-7", "ann", "hangup", False))
        assert isinstance(await asyncio.wait_for(anext(events), 5), AgentLeft)
        await events.aclose()  # type: ignore[attr-defined]
    finally:
        await floor.service.stop()
