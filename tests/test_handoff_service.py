"""A handoff from the caller's side and the agent's side, as conversations with the HandoffService."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import fakeredis
import pytest
import redis.asyncio as aredis
from fakeredis import aioredis as fake_aioredis

from handoff.config import HandoffConfig
from handoff.contacts import NoContacts
from handoff.errors import IllegalHandoffTransition, NotYourCall, OfferTaken, UnknownQueue
from handoff.events import (
    AgentConnected,
    AgentLeft,
    CallEnded,
    CallUpdate,
    Closed,
    Overflow,
    QueuePosition,
    ReturnedToBot,
    StatusChanged,
)
from handoff.model import AgentStatus, HandoffState
from handoff.testing import Floor, decision, make_floor
from tests.redis_fixtures import wait_subscribed

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def floor_with(tmp_path: Path, **config: Any) -> Floor:
    client = fake_aioredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
    return make_floor(client, tmp_path, config=HandoffConfig.model_validate(config))


@pytest.fixture
async def floor(tmp_path: Path) -> AsyncIterator[Floor]:
    floor = floor_with(tmp_path)
    await floor.service.start(run_router=False)
    yield floor


class Caller:
    """The caller's side: listens to call_events in the background, like the voice pipeline."""

    def __init__(self, floor: Floor, call_id: str) -> None:
        self.heard: list[CallUpdate] = []
        self._events = floor.service.call_events(call_id)
        self._task = asyncio.ensure_future(self._listen())

    async def _listen(self) -> None:
        async for update in self._events:
            self.heard.append(update)

    async def hears(self, kind: type, timeout: float = 5.0) -> Any:
        async def wait() -> Any:
            while True:
                found = [u for u in self.heard if isinstance(u, kind)]
                if found:
                    return found[-1]
                await asyncio.sleep(0.005)
        return await asyncio.wait_for(wait(), timeout)

    async def done(self) -> None:
        await asyncio.wait_for(self._task, 5)


async def call_in(floor: Floor, call_id: str = "call-1", **kw: Any) -> Caller:
    await floor.service.request(call_id, decision(created_at=floor.clock.now, **kw))
    caller = Caller(floor, call_id)
    await wait_subscribed(floor.service.client, floor.service.keys.call_channel(call_id))
    return caller


async def test_the_agent_sees_who_calls_what_was_said_and_why(floor: Floor) -> None:
    await floor.staff(("Ann", {"orders": 3}))
    floor.clock.advance(5)
    queued = await floor.service.request("call-1", decision(created_at=floor.clock.now - 30), language="en")
    assert (queued.queue, queued.position, queued.state) == ("orders", 1, HandoffState.WAITING)
    floor.clock.advance(12)
    await floor.service.router.tick()
    context = await floor.service.accept("ann", "call-1:1")
    assert context.caller_number == "+16175550142"
    assert context.contact is not None and (context.contact.name, context.contact.tier) == ("Sarah Miller", "premium")
    assert context.language == "en" and context.reason == "caller_asked"
    assert [(t.role, t.text) for t in context.transcript] == [
        ("user", "where is my order"), ("bot", "What is your order number?"), ("user", "I want to talk to a person")]
    assert context.transcript[0].timestamp == floor.clock.now - 12 - 30 - 20
    assert [(i.intent, i.confidence) for i in context.intents] == [("check_order_status", 0.93),
                                                                   ("talk_to_human", 0.88)]
    assert context.slots == {"order_number": "48215"} and context.ivr_path == ("main", "orders")
    assert context.summary == "Caller wants an agent about order 48215."
    assert context.wait_s == 42.0  # 30 s with the bot after deciding, 12 s in the queue


async def test_an_unknown_caller_and_an_unknown_skill(tmp_path: Path) -> None:
    client = fake_aioredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
    floor = make_floor(client, tmp_path, contacts=NoContacts())
    await floor.service.start(run_router=False)
    queued = await floor.service.request("c9", decision(skill="warranty", caller=None, created_at=floor.clock.now))
    assert queued.queue == "general"
    record = await floor.service.calls.get("c9")
    assert record.context.contact is None and record.context.caller_number is None


async def test_a_waiting_caller_hears_position_then_the_agent(floor: Floor) -> None:
    await floor.staff(("Ann", {"orders": 3}))
    await floor.service.set_status("ann", AgentStatus.AWAY)  # signed in, on a break
    caller = await call_in(floor)
    await floor.service.router.tick()
    assert await caller.hears(QueuePosition) == QueuePosition("call-1", 1, 180.0)
    await floor.service.set_status("ann", AgentStatus.AVAILABLE)
    await floor.service.router.tick()
    await floor.service.accept("ann", "call-1:1")
    assert await caller.hears(AgentConnected) == AgentConnected("call-1", "ann", "Ann")
    await floor.service.hang_up("ann", "call-1")
    assert await caller.hears(AgentLeft) == AgentLeft("call-1", "ann", "hangup")
    await caller.done()  # the events end with the call
    assert (await floor.service.calls.get("call-1")).state is HandoffState.ENDED
    assert await floor.status("ann") is AgentStatus.WRAP_UP


async def test_position_updates_repeat_every_interval(tmp_path: Path) -> None:
    floor = floor_with(tmp_path, queues={"orders": {"position_interval_s": 20, "average_handle_s": 60}})
    await floor.service.start(run_router=False)
    await floor.staff(("Ann", {"orders": 3}))
    await floor.service.set_status("ann", AgentStatus.AWAY)
    await call_in(floor, "first")
    second = await call_in(floor, "second", priority=1)  # a complaint: goes first
    await floor.service.router.tick()
    assert await second.hears(QueuePosition) == QueuePosition("second", 1, 60.0)
    floor.clock.advance(10)
    await floor.service.router.tick()
    floor.clock.advance(10)
    await floor.service.router.tick()
    await asyncio.sleep(0.05)
    # the first is where the call stood when the caller's side subscribed (as request() placed it)
    assert [u for u in second.heard if isinstance(u, QueuePosition)] == [QueuePosition("second", 1, 60.0)] * 3


async def test_max_wait_offers_a_callback_at_the_callers_number(tmp_path: Path) -> None:
    floor = floor_with(tmp_path, queues={"orders": {"max_wait_s": 120, "overflow": "callback"}})
    await floor.service.start(run_router=False)
    await floor.staff(("Ann", {"orders": 3}))
    await floor.service.set_status("ann", AgentStatus.AWAY)
    caller = await call_in(floor)
    await floor.service.router.tick()
    floor.clock.advance(119)
    await floor.service.router.tick()
    assert not [u for u in caller.heard if isinstance(u, Overflow)]
    floor.clock.advance(1)
    await floor.service.router.tick()
    assert await caller.hears(Overflow) == Overflow("call-1", "callback", "+16175550142")
    await caller.done()
    assert (await floor.service.calls.get("call-1")).state is HandoffState.OVERFLOWED


async def test_max_wait_while_ringing_withdraws_the_offer(tmp_path: Path) -> None:
    floor = floor_with(tmp_path, queues={"orders": {"max_wait_s": 30, "ring_timeout_s": 60, "overflow": "voicemail"}})
    await floor.service.start(run_router=False)
    await floor.staff(("Ann", {"orders": 3}))
    caller = await call_in(floor)
    await floor.service.router.tick()
    floor.clock.advance(30)
    await floor.service.router.tick()
    assert await caller.hears(Overflow) == Overflow("call-1", "voicemail", None)
    assert await floor.status("ann") is AgentStatus.AVAILABLE
    with pytest.raises(OfferTaken, match=r"has ended \(overflow\)"):
        await floor.service.accept("ann", "call-1:1")


async def test_outside_business_hours_the_caller_hears_when_it_opens(tmp_path: Path) -> None:
    hours = {"timezone": "Europe/Berlin", "days": {"fri": "10:00-18:00"}}  # 08:00 UTC = 09:00 in Berlin
    floor = floor_with(tmp_path, queues={"orders": {"hours": hours}})
    await floor.service.start(run_router=False)
    await floor.staff(("Ann", {"orders": 3}))
    caller = await call_in(floor)
    await floor.service.router.tick()
    assert await caller.hears(Closed) == Closed("call-1", "orders", floor.clock.now - 1 + 3600)
    assert await floor.status("ann") is AgentStatus.AVAILABLE  # nobody was rung


async def test_a_declined_call_rings_the_next_agent(floor: Floor) -> None:
    await floor.staff(("Ann", {"orders": 3}), ("Bob", {"orders": 3}))
    await call_in(floor)
    await floor.service.router.tick()
    assert await floor.ringing(["ann", "bob"]) == {"ann": "call-1:1", "bob": None}
    await floor.service.decline("ann", "call-1:1")
    await floor.service.router.tick()
    assert await floor.ringing(["ann", "bob"]) == {"ann": None, "bob": "call-1:2"}
    with pytest.raises(OfferTaken, match="declined by ann"):
        await floor.service.accept("ann", "call-1:1")


async def test_an_agent_with_two_skills_rings_for_one_call_at_a_time(floor: Floor) -> None:
    """Two queues' callers wait and Ann takes both kinds: one pass of the router rings her for one call, not one per
    queue (a 40-line soak had an agent connected to three callers at once, two of whom then waited in silence)."""
    await floor.staff(("Ann", {"orders": 3, "returns": 3}))
    await call_in(floor, "call-1")
    await call_in(floor, "call-2", skill="returns")
    await floor.service.router.tick()
    offered = [(await floor.service.calls.get(c)).state for c in ("call-1", "call-2")]
    assert sorted(s.value for s in offered) == ["offered", "waiting"]
    ringing = (await floor.ringing(["ann"]))["ann"]
    assert ringing is not None
    other = "call-2" if ringing.startswith("call-1") else "call-1"
    with pytest.raises(OfferTaken):
        await floor.service.accept("ann", f"{other}:1")
    await floor.service.accept("ann", ringing)
    await floor.service.hang_up("ann", ringing.partition(":")[0])
    await floor.service.wrap_up("ann", ringing.partition(":")[0], "resolved", "")
    await floor.service.router.tick()
    assert await floor.ringing(["ann"]) == {"ann": f"{other}:1"}  # then the other caller, once she is free


async def test_one_reserved_agent_rings_for_one_call_of_a_batch(floor: Floor) -> None:
    from handoff.acd import Ring

    await floor.staff(("Ann", {"orders": 3}))
    await call_in(floor, "call-1")
    await call_in(floor, "call-2")
    now = floor.clock.now
    rung = await floor.service.moves.ring([Ring("call-1", "call-1:1", ("ann",), now + 20),
                                           Ring("call-2", "call-2:1", ("ann",), now + 20)])
    assert [r.call_id for r in rung] == ["call-1"]
    assert (await floor.service.calls.get("call-2")).state is HandoffState.WAITING


async def test_accepting_an_offer_the_desk_does_not_ring_for_connects_nothing(floor: Floor) -> None:
    """An offer recorded for Ann while her desk rings for another call (a stale write): the accept is refused and
    gives its claim back, so the offer still times out; the call ringing at her desk is hers to take."""
    await floor.staff(("Ann", {"orders": 3}))
    await call_in(floor, "call-1")
    await call_in(floor, "call-2")
    await floor.service.router.tick()
    assert await floor.ringing(["ann"]) == {"ann": "call-1:1"}
    await floor.service.calls.update("call-2", state="offered", offer_id="call-2:1", offered_to="ann")
    with pytest.raises(OfferTaken, match="not ringing at ann's desk"):
        await floor.service.accept("ann", "call-2:1")
    assert await floor.service.calls.offer_owner("call-2:1") is None
    assert (await floor.service.calls.get("call-2")).state is HandoffState.OFFERED
    await floor.service.accept("ann", "call-1:1")
    assert (await floor.service.presence.state("ann")).call_id == "call-1"


async def test_the_caller_hanging_up_while_it_rings_withdraws_the_offer(floor: Floor) -> None:
    await floor.staff(("Ann", {"orders": 3}))
    await call_in(floor)
    await floor.service.router.tick()
    await floor.service.caller_hung_up("call-1")
    assert await floor.status("ann") is AgentStatus.AVAILABLE
    assert (await floor.service.calls.get("call-1")).state is HandoffState.ABANDONED
    with pytest.raises(OfferTaken, match="caller hung up"):
        await floor.service.accept("ann", "call-1:1")


async def test_the_caller_hanging_up_ends_the_agents_call(floor: Floor) -> None:
    await floor.staff(("Ann", {"orders": 3}))
    await call_in(floor)
    await floor.service.router.tick()
    await floor.service.accept("ann", "call-1:1")
    events = floor.service.agent_events("ann")
    nxt = asyncio.ensure_future(anext(events))
    await asyncio.sleep(0.02)
    await floor.service.caller_hung_up("call-1")
    told = [await asyncio.wait_for(nxt, 5), await asyncio.wait_for(anext(events), 5)]
    assert told == [StatusChanged("ann", AgentStatus.WRAP_UP, AgentStatus.ON_CALL),
                    CallEnded("call-1", "caller_hung_up")]
    assert await floor.status("ann") is AgentStatus.WRAP_UP


async def test_the_caller_and_the_agent_hanging_up_at_once_strand_nothing(floor: Floor) -> None:
    """The caller's side read the call as connected just before the agent hung up (a soak under load did this):
    the agent stays in wrap-up, and a later, stale hang-up never ends the agent's next call."""
    await floor.staff(("Ann", {"orders": 3}))
    await call_in(floor)
    await floor.service.router.tick()
    await floor.service.accept("ann", "call-1:1")
    seen_by_caller_side = await floor.service.calls.get("call-1")  # connected
    await floor.service.hang_up("ann", "call-1")
    await floor.service.moves.caller_gone(seen_by_caller_side)  # raised IllegalHandoffTransition before
    assert await floor.status("ann") is AgentStatus.WRAP_UP
    await floor.service.wrap_up("ann", "call-1", "resolved", "")
    await call_in(floor, "call-2")
    await floor.service.router.tick()
    await floor.service.accept("ann", "call-2:1")
    await floor.service.moves.caller_gone(seen_by_caller_side)  # very late: call-1's caller, not Ann's call-2
    assert await floor.status("ann") is AgentStatus.ON_CALL
    assert (await floor.service.calls.get("call-2")).state is HandoffState.CONNECTED


async def test_a_desk_hears_its_call_end_once_when_both_sides_hang_up_at_once(floor: Floor) -> None:
    """A second `call_ended` for a call the agent already left reached the desk on its next call, and the desk's
    wrap-up then hit that call ("cannot 'wrap_up' while 'on_call'" in the soak)."""
    await floor.staff(("Ann", {"orders": 3}))
    await call_in(floor)
    await floor.service.router.tick()
    await floor.service.accept("ann", "call-1:1")
    seen_by_caller_side = await floor.service.calls.get("call-1")  # connected
    events = floor.service.agent_events("ann")
    told: list[object] = []

    async def listen() -> None:
        async for update in events:
            told.append(update)

    listening = asyncio.ensure_future(listen())
    await asyncio.sleep(0.05)
    await floor.service.hang_up("ann", "call-1")
    await floor.service.moves.caller_gone(seen_by_caller_side)  # the caller's side, a moment late
    await asyncio.sleep(0.3)
    listening.cancel()
    assert [u for u in told if isinstance(u, CallEnded)] == [CallEnded("call-1", "agent_hung_up")]


async def test_transfer_to_another_queue_goes_first_and_keeps_the_wait(floor: Floor) -> None:
    await floor.staff(("Ann", {"orders": 3}), ("Tim", {"tech": 3}))
    await floor.service.set_status("tim", AgentStatus.AWAY)
    await call_in(floor, "early", skill="tech")
    floor.clock.advance(30)
    caller = await call_in(floor)
    await floor.service.router.tick()
    await floor.service.accept("ann", "call-1:1")
    await floor.service.transfer("ann", "call-1", queue="tech")
    assert await caller.hears(AgentLeft) == AgentLeft("call-1", "ann", "transfer", requeued=True)
    view = await floor.service.snapshot()
    tech = next(q for q in view.queues if q.name == "tech")
    assert [c.call_id for c in tech.waiting] == ["call-1", "early"]
    await floor.service.set_status("tim", AgentStatus.AVAILABLE)
    await floor.service.router.tick()
    context = await floor.service.accept("tim", "call-1:2")
    assert context.queue == "tech" and context.wait_s == 0.0  # no clock moved since the call came in
    with pytest.raises(UnknownQueue, match="no queue 'sales'"):
        await floor.service.transfer("tim", "call-1", queue="sales")


async def test_transfer_to_a_named_agent_rings_only_them(floor: Floor) -> None:
    await floor.staff(("Ann", {"orders": 3}), ("Bob", {"orders": 5}), ("Cat", {"orders": 5}))
    await call_in(floor)
    await floor.service.router.tick()
    await floor.service.accept("ann", "call-1:1")  # the longest idle
    await floor.service.transfer("ann", "call-1", to_agent="cat")
    assert await floor.ringing(["bob", "cat"]) == {"bob": None, "cat": "call-1:2"}
    await floor.service.router.tick()  # a router takes charge of the transferred call
    await floor.service.accept("cat", "call-1:2")
    assert (await floor.service.calls.get("call-1")).agent_id == "cat"
    assert await floor.status("ann") is AgentStatus.WRAP_UP


async def test_hand_back_returns_the_call_to_the_bot(floor: Floor) -> None:
    await floor.staff(("Ann", {"orders": 3}))
    caller = await call_in(floor)
    await floor.service.router.tick()
    await floor.service.accept("ann", "call-1:1")
    await floor.service.hand_back("ann", "call-1")
    assert await caller.hears(AgentLeft) == AgentLeft("call-1", "ann", "hand_back")
    assert (await floor.service.calls.get("call-1")).state is HandoffState.RETURNED_TO_BOT
    with pytest.raises(NotYourCall):
        await floor.service.hang_up("ann", "call-1")


async def test_a_lost_agent_puts_the_call_back_in_front_of_the_queue(floor: Floor) -> None:
    await floor.staff(("Ann", {"orders": 3}), ("Bob", {"orders": 3}))
    await floor.service.set_status("bob", AgentStatus.AWAY)  # logged in, taking a break
    caller = await call_in(floor)
    await floor.service.router.tick()
    await floor.service.accept("ann", "call-1:1")
    floor.clock.advance(60)
    await call_in(floor, "complaint", priority=1)
    await floor.service.agent_disconnected("ann")
    assert await caller.hears(AgentLeft) == AgentLeft("call-1", "ann", "disconnected", requeued=True)
    assert await floor.status("ann") is AgentStatus.OFFLINE
    orders = next(q for q in (await floor.service.snapshot()).queues if q.name == "orders")
    assert [(c.call_id, c.wait_s) for c in orders.waiting] == [("call-1", 60.0), ("complaint", 0.0)]
    await floor.service.set_status("bob", AgentStatus.AVAILABLE)
    await floor.service.router.tick()
    assert await floor.ringing(["bob"]) == {"bob": "call-1:2"}


async def test_a_lost_agent_with_nobody_else_logged_in_hands_the_call_to_the_bot(floor: Floor) -> None:
    await floor.staff(("Ann", {"orders": 3}))
    caller = await call_in(floor)
    await floor.service.router.tick()
    await floor.service.accept("ann", "call-1:1")
    await floor.service.agent_disconnected("ann")
    assert await caller.hears(ReturnedToBot) == ReturnedToBot("call-1", "no orders agent is logged in")
    assert (await floor.service.calls.get("call-1")).state is HandoffState.RETURNED_TO_BOT


async def test_wrap_up_records_the_outcome_and_frees_the_agent(tmp_path: Path) -> None:
    outcomes: list[dict[str, Any]] = []

    async def sink(outcome: dict[str, Any]) -> None:
        outcomes.append(outcome)

    client = fake_aioredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
    floor = make_floor(client, tmp_path)
    floor.service._wrap_up_sink = sink
    await floor.service.start(run_router=False)
    await floor.staff(("Ann", {"orders": 3}))
    await call_in(floor)
    await floor.service.router.tick()
    await floor.service.accept("ann", "call-1:1")
    with pytest.raises(IllegalHandoffTransition, match="cannot 'wrap_up' while 'on_call'"):
        await floor.service.wrap_up("ann", "call-1", "resolved", "")
    with pytest.raises(IllegalHandoffTransition):
        await floor.service.set_status("ann", AgentStatus.AWAY)
    await floor.service.hang_up("ann", "call-1")
    with pytest.raises(ValueError, match="disposition"):
        await floor.service.wrap_up("ann", "call-1", " ", "")
    await floor.service.wrap_up("ann", "call-1", "resolved", "new delivery date given")
    assert outcomes[0]["disposition"] == "resolved" and outcomes[0]["notes"] == "new delivery date given"
    assert json.loads(json.dumps(outcomes[0]))["caller_number"] == "+16175550142"
    assert await floor.status("ann") is AgentStatus.AVAILABLE


async def test_the_supervisor_sees_queues_agents_and_live_calls(floor: Floor) -> None:
    await floor.staff(("Ann", {"orders": 3}), ("Bob", {"billing": 2}))
    await call_in(floor, "a")
    floor.clock.advance(10)
    await call_in(floor, "b", priority=1)
    await floor.service.router.tick()  # Ann rings for the complaint
    floor.clock.advance(5)
    view = await floor.service.snapshot()
    orders = next(q for q in view.queues if q.name == "orders")
    assert [(c.call_id, c.state, c.wait_s) for c in orders.waiting] == [("b", HandoffState.OFFERED, 5.0),
                                                                        ("a", HandoffState.WAITING, 15.0)]
    assert orders.longest_wait_s == 15.0 and orders.agents_logged_in == 1 and orders.agents_available == 0
    assert {a.agent_id: a.status for a in view.agents} == {"ann": AgentStatus.RINGING, "bob": AgentStatus.AVAILABLE}
    await floor.service.accept("ann", "b:1")
    view = await floor.service.snapshot()
    assert [(c.call_id, c.agent_id) for c in view.live_calls] == [("b", "ann")]
    assert json.dumps(view.to_dict())  # the page gets it as JSON


async def test_an_agent_who_never_signed_in_has_no_since(floor: Floor) -> None:
    """Not "offline since 29938049 min": an agent in the directory who never signed in has no time in state."""
    await floor.staff(("Ann", {"orders": 3}))
    floor.hire("Bob", {"billing": 2})
    floor.clock.advance(30)
    agents = {a.agent_id: a for a in (await floor.service.snapshot()).agents}
    assert agents["bob"].since is None and agents["bob"].status is AgentStatus.OFFLINE
    assert agents["ann"].since is not None and floor.clock.now - agents["ann"].since >= 30


async def test_a_caller_subscribing_late_hears_where_the_call_stands(tmp_path: Path) -> None:
    floor = floor_with(tmp_path, queues={"orders": {"max_wait_s": 60, "average_handle_s": 90}})
    await floor.service.start(run_router=False)
    await floor.staff(("Ann", {"orders": 3}))
    await floor.service.set_status("ann", AgentStatus.AWAY)
    await floor.service.request("first", decision(created_at=floor.clock.now))
    await floor.service.request("second", decision(created_at=floor.clock.now))
    # subscribed after request() returned and before any router pass: the position is not missed
    second = Caller(floor, "second")
    assert await second.hears(QueuePosition) == QueuePosition("second", 2, 180.0)
    await floor.service.router.tick()  # the router's own announcements, published to nobody for "first"
    first = Caller(floor, "first")
    assert await first.hears(QueuePosition) == QueuePosition("first", 1, 90.0)
    floor.clock.advance(60)
    await floor.service.router.tick()  # both overflow
    await first.done()
    assert first.heard[-1] == Overflow("first", "callback", "+16175550142")
    late = Caller(floor, "second")  # after the call left the queue: it hears the outcome, then the events end
    await late.done()
    assert late.heard == [Overflow("second", "callback", "+16175550142")]


async def test_an_overflow_with_choices_tells_the_caller_what_to_offer(tmp_path: Path) -> None:
    floor = floor_with(tmp_path, queues={"orders": {
        "max_wait_s": 30, "overflow": "voicemail", "overflow_target": "+4930123456",
        "overflow_choices": ["callback", "voicemail", "transfer"], "overflow_choice_timeout_s": 6}})
    await floor.service.start(run_router=False)
    caller = await call_in(floor)
    floor.clock.advance(30)
    await floor.service.router.tick()
    assert await caller.hears(Overflow) == Overflow("call-1", "voicemail", "+4930123456",
                                                    ("callback", "voicemail", "transfer"),
                                                    6.0, "+4930123456")
    with pytest.raises(ValueError, match="overflow_target"):
        HandoffConfig.model_validate({"queues": {"orders": {"overflow_choices": ["callback", "transfer"]}}})
    with pytest.raises(ValueError, match="twice"):
        HandoffConfig.model_validate({"queues": {"orders": {"overflow_choices": ["callback", "callback"]}}})


async def test_a_call_settled_since_the_routers_last_read_is_not_overflowed_and_the_others_still_are(
    tmp_path: Path,
) -> None:
    """The router decides from a view re-read every `resync_s`; a caller who hung up in between must not make
    the overflow fail, and with it every other call's routing (the 30-minute soak: 77 failed router passes)."""
    floor = floor_with(tmp_path, resync_s=3600, queues={"orders": {"max_wait_s": 30, "overflow": "callback"}})
    await floor.service.start(run_router=False)
    await floor.staff(("Ann", {"orders": 3}))
    await floor.service.set_status("ann", AgentStatus.AWAY)  # signed in, not taking calls: the callers wait
    gone, stays = await call_in(floor, "gone"), await call_in(floor, "stays")
    await floor.service.router.tick()  # the router's view: both waiting
    await floor.service.caller_hung_up("gone")
    await gone.done()
    floor.clock.advance(30)
    await floor.service.router.tick()  # both past their wait; "gone" no longer waits
    assert await stays.hears(Overflow) == Overflow("stays", "callback", "+16175550142")
    assert (await floor.service.calls.get("gone")).state is HandoffState.ABANDONED
    assert not any(isinstance(u, Overflow) for u in gone.heard)
    assert await floor.service.router.tick() == []  # the next pass has nothing left to do


async def test_callbacks_the_callers_asked_for_are_on_the_supervisors_list(floor: Floor) -> None:
    await call_in(floor, "a")
    await call_in(floor, "b", caller=None)
    first = await floor.service.request_callback("a")
    assert (first.number, first.queue, first.requested_at) == ("+16175550142", "orders", floor.clock.now)
    floor.clock.advance(5)
    with pytest.raises(ValueError, match="caller's is unknown"):
        await floor.service.request_callback("b")
    await floor.service.request_callback("b", "+4930555000")
    view = await floor.service.snapshot()
    assert [(c.call_id, c.number) for c in view.callbacks] == [("a", "+16175550142"), ("b", "+4930555000")]
    assert json.loads(json.dumps(view.to_dict()))["callbacks"][1]["number"] == "+4930555000"
    assert await floor.service.callbacks.done("a") and not await floor.service.callbacks.done("a")
    assert [c.call_id for c in (await floor.service.snapshot()).callbacks] == ["b"]


async def talk(floor: Floor, call_id: str, *, talk_s: float, wrap_s: float) -> None:
    await floor.service.request(call_id, decision(created_at=floor.clock.now))
    await floor.service.router.tick()
    await floor.service.accept("ann", f"{call_id}:1")
    floor.clock.advance(talk_s)
    await floor.service.hang_up("ann", call_id)
    floor.clock.advance(wrap_s)
    await floor.service.wrap_up("ann", call_id, "resolved", "")


async def test_nobody_signed_in_for_the_skill_gives_the_call_back_to_the_bot_at_once(floor: Floor) -> None:
    await floor.staff(("Bob", {"tech": 3}))  # signed in, but not for orders
    floor.hire("Ann", {"orders": 3})  # has the skill, not signed in
    queued = await floor.service.request("call-1", decision(created_at=floor.clock.now))
    assert (queued.state, queued.position, queued.expected_wait_s) == (HandoffState.RETURNED_TO_BOT, 0, None)
    caller = Caller(floor, "call-1")  # subscribes after request(), as the pipeline does
    await caller.done()
    assert caller.heard == [ReturnedToBot("call-1", "no orders agent is logged in")]  # no "next in line"
    assert (await floor.service.calls.get("call-1")).state is HandoffState.RETURNED_TO_BOT


async def test_nobody_signed_in_offers_the_overflow_choices_at_once(tmp_path: Path) -> None:
    floor = floor_with(tmp_path, queues={"orders": {"overflow": "callback", "overflow_choices": ["callback", "voicemail"],
                                                    "overflow_choice_timeout_s": 6}})
    await floor.service.start(run_router=False)
    await floor.service.request("call-1", decision(created_at=floor.clock.now))
    caller = Caller(floor, "call-1")
    await caller.done()
    assert caller.heard == [Overflow("call-1", "callback", "+16175550142", ("callback", "voicemail"), 6.0, None)]


async def test_a_waiting_call_goes_back_to_the_bot_when_the_last_agent_signs_out(floor: Floor) -> None:
    await floor.staff(("Ann", {"orders": 3}))
    await floor.service.set_status("ann", AgentStatus.AWAY)
    caller = await call_in(floor)
    await floor.service.router.tick()
    assert await caller.hears(QueuePosition) == QueuePosition("call-1", 1, 180.0)
    await floor.service.agent_disconnected("ann")  # signed out (the desk closed)
    await floor.service.router.tick()
    assert await caller.hears(ReturnedToBot) == ReturnedToBot("call-1", "no orders agent is logged in")
    await caller.done()


async def test_expected_waits_follow_the_measured_handle_times(tmp_path: Path) -> None:
    floor = floor_with(tmp_path, queues={"orders": {"average_handle_s": 200}}, handle_time_weight=0.25)
    await floor.service.start(run_router=False)
    await floor.staff(("Ann", {"orders": 3}))
    await floor.service.set_status("ann", AgentStatus.AWAY)
    before = await floor.service.request("before", decision(created_at=floor.clock.now))
    assert before.expected_wait_s == 200.0  # no history yet: the configured average
    await floor.service.caller_hung_up("before")
    await floor.service.set_status("ann", AgentStatus.AVAILABLE)
    await talk(floor, "c1", talk_s=100, wrap_s=20)  # 120 s: the first measurement sets the average
    assert await floor.service.handle_times.get("orders") == 120.0
    await talk(floor, "c2", talk_s=50, wrap_s=10)  # 60 s: 0.25 x 60 + 0.75 x 120
    assert await floor.service.handle_times.get("orders") == 105.0
    await floor.service.set_status("ann", AgentStatus.AWAY)
    queued = await floor.service.request("next", decision(created_at=floor.clock.now))
    assert queued.expected_wait_s == 105.0
    floor.clock.advance(1)
    await floor.service.request("after", decision(created_at=floor.clock.now))
    caller = Caller(floor, "after")
    await floor.service.router.tick()
    await asyncio.sleep(0.05)
    assert [u for u in caller.heard if isinstance(u, QueuePosition)][-1] == QueuePosition("after", 2, 210.0)
    orders = next(q for q in (await floor.service.snapshot()).queues if q.name == "orders")
    assert orders.handle_s == 105.0 and [c.expected_wait_s for c in orders.waiting] == [105.0, 210.0]


async def test_the_supervisor_sees_a_caller_on_hold(floor: Floor) -> None:
    await floor.staff(("Ann", {"orders": 3}))
    await call_in(floor)
    await floor.service.router.tick()
    await floor.service.accept("ann", "call-1:1")
    await floor.service.hold("ann", "call-1", True)
    assert [c.on_hold for c in (await floor.service.snapshot()).live_calls] == [True]
    await floor.service.hold("ann", "call-1", False)
    assert [c.on_hold for c in (await floor.service.snapshot()).live_calls] == [False]
    with pytest.raises(NotYourCall):
        await floor.service.hold("bob", "call-1", True)


CARD = "4111111111111111"


async def test_the_context_is_redacted_before_redis_stores_it(tmp_path: Path) -> None:
    """Transcript, keys, summary and slots reach Redis (a real server) without card numbers or e-mails."""
    from callpilot.records.redaction import redact_stored
    from handoff.testing import REAL_REDIS_URL, cleanup

    client = aredis.Redis.from_url(REAL_REDIS_URL, decode_responses=True)
    prefix = f"test:redact:{uuid.uuid4().hex[:8]}:"
    floor = make_floor(client, tmp_path, prefix=prefix, redact=redact_stored)
    transcript = (
        {"role": "user", "text": f"my card is {CARD} and I'm jo@example.com", "timestamp": 1.0,
         "intent": "billing_dispute", "confidence": 0.9, "dtmf": None},
        {"role": "user", "text": "", "timestamp": 2.0, "intent": None, "confidence": None, "dtmf": f"11{CARD}#"})
    try:
        await floor.service.start(run_router=False)
        await floor.service.request("call-r", decision(transcript=transcript, slots={"email": "jo@example.com",
                                                                                     "order_number": "48215"},
                                                       summary=f"Card {CARD} charged twice"))
        stored = []
        async for key in client.scan_iter(match=f"{prefix}*"):
            kind = await client.type(key)
            if kind == "hash":
                stored.append(json.dumps(await client.hgetall(key)))
            elif kind == "stream":
                stored.append(json.dumps(await client.xrange(key)))
            elif kind == "string":
                stored.append(str(await client.get(key)))
        everything = "\n".join(stored)
        assert "call-r" in everything and "48215" in everything  # the context is there, order number kept
        assert CARD not in everything and "jo@example.com" not in everything
        record = await floor.service.calls.get("call-r")
        assert record is not None
        lines = record.context.transcript
        assert lines[0].text == "my card is [card] and I'm [email]" and lines[1].dtmf == "[card]#"
        assert record.context.summary == "Card [card] charged twice"
        assert record.context.caller_number == "+16175550142"  # kept: the contact and a callback need it
    finally:
        await floor.service.stop()
        await cleanup(client, prefix)
        await client.aclose()


async def ringing_desk(floor: Floor, send_json: Callable[[dict[str, Any]], Awaitable[None]]) -> Any:
    """Ann's desk session (started) with call-1 offered to her; `send_json` is what her browser receives."""
    from handoff.bridge import AudioBridge
    from handoff.desk_session import DeskSession

    async def send_bytes(data: bytes) -> None:
        pass

    (ann,) = await floor.staff(("Ann", {"orders": 3}))
    await call_in(floor)
    await floor.service.router.tick()
    session = DeskSession(ann, floor.service, AudioBridge(floor.service.client), send_json, send_bytes)
    await session.start()
    return session


async def test_a_desk_is_never_told_connected_while_call_ended_is_on_its_way(floor: Floor) -> None:
    """`call_ended` still being sent (a slow browser link) while the accepting side finishes bridging: the desk
    got `connected` after `call_ended`, went on 'talking' to an ended call, and its hang-up was refused (soak)."""
    sent: list[dict[str, Any]] = []
    sending_ended, release = asyncio.Event(), asyncio.Event()

    async def send_json(message: dict[str, Any]) -> None:
        if message["type"] == "call_ended":
            sending_ended.set()
            await release.wait()
        sent.append(message)

    session = await ringing_desk(floor, send_json)
    try:
        await floor.service.accept("ann", "call-1:1")
        await floor.service.caller_hung_up("call-1")
        await asyncio.wait_for(sending_ended.wait(), 5)
        await asyncio.wait_for(session.bridge_call("call-1", None), 5)  # the accept path catches up meanwhile
        release.set()
        await asyncio.sleep(0.1)
        kinds = [m["type"] for m in sent if m.get("call_id") == "call-1"]
        assert kinds == ["call_ended"], kinds
        assert session.call_id is None
    finally:
        release.set()
        await session.close()


async def test_a_desk_is_never_told_connected_after_the_call_ended(floor: Floor) -> None:
    """The caller hangs up as the agent answers: the desk hears `call_ended` and then no `connected` for that
    call (a soak's desks, told `connected` last, kept 'talking' to an ended call and could not hang up)."""
    sent: list[dict[str, Any]] = []

    async def send_json(message: dict[str, Any]) -> None:
        sent.append(message)

    session = await ringing_desk(floor, send_json)
    try:
        await floor.service.accept("ann", "call-1:1")
        await floor.service.caller_hung_up("call-1")  # before the accepting side bridged the audio
        for _ in range(100):
            if any(m["type"] == "call_ended" for m in sent):
                break
            await asyncio.sleep(0.02)
        await session.bridge_call("call-1", None)  # the slow accept path catches up
        await asyncio.sleep(0.1)
        kinds = [m["type"] for m in sent if m.get("call_id") == "call-1"]
        assert "call_ended" in kinds and "connected" not in kinds, kinds
        assert session.call_id is None
    finally:
        await session.close()


async def test_a_caller_hanging_up_as_the_accept_claims_the_offer_ends_the_agents_call(floor: Floor) -> None:
    """The caller hangs up after the agent's accept has claimed the offer but before the call is written connected:
    the hang-up found the offer taken and the call not yet connected, and did nothing; the desk was told `connected`
    to a call nobody was on, never `call_ended`, and had no call to wrap up (soak: 42 calls without a wrap-up)."""
    sent: list[dict[str, Any]] = []

    async def send_json(message: dict[str, Any]) -> None:
        sent.append(message)

    session = await ringing_desk(floor, send_json)
    claim = floor.service.calls.claim_offer

    async def claim_then_caller_hangs_up(offer_id: str, by: str) -> bool:
        won = await claim(offer_id, by)
        if won and by == "ann":
            await floor.service.caller_hung_up("call-1")
        return won

    floor.service.calls.claim_offer = claim_then_caller_hangs_up  # type: ignore[method-assign]
    try:
        await session.receive_text({"type": "accept", "offer_id": "call-1:1"})
        for _ in range(100):
            if any(m["type"] == "call_ended" for m in sent):
                break
            await asyncio.sleep(0.02)
        ended = [m for m in sent if m["type"] == "call_ended"]
        assert [(m["call_id"], m["reason"]) for m in ended] == [("call-1", "caller_hung_up")], sent
        assert (await floor.service.calls.get("call-1")).state is HandoffState.ENDED
        assert await floor.status("ann") is AgentStatus.WRAP_UP
        await session.receive_text({"type": "wrap_up", "call_id": "call-1", "disposition": "resolved"})
        assert sent[-1] == {"type": "wrapped_up", "call_id": "call-1"}, sent[-1]
        assert await floor.status("ann") is AgentStatus.AVAILABLE
        kinds = [m["type"] for m in sent if m.get("call_id") == "call-1"]
        assert kinds.count("call_ended") == 1 and "connected" not in kinds[kinds.index("call_ended"):], kinds
    finally:
        await session.close()


async def test_a_quiet_read_between_the_end_and_its_reason_still_hears_the_agent_leave(floor: Floor) -> None:
    """An agent's hang-up writes the call ended, then stores and publishes AgentLeft. A caller side re-reading the
    call in between (its quiet-time check) found it ended with no outcome and stopped listening, so the AgentLeft
    that followed was never heard: a soak's callers stayed on hold after their agent had hung up."""
    await floor.staff(("Ann", {"orders": 3}))
    caller = await call_in(floor)
    await floor.service.router.tick()
    await floor.service.accept("ann", "call-1:1")
    assert await caller.hears(AgentConnected) == AgentConnected("call-1", "ann", "Ann")
    await floor.service.calls.update("call-1", state="ended")  # the end written, its reason not yet
    await asyncio.sleep(1.5)  # the feed's quiet-time re-read (every second) sees it
    await floor.service.moves.tell_call("call-1", AgentLeft("call-1", "ann", "hangup"))
    assert await caller.hears(AgentLeft) == AgentLeft("call-1", "ann", "hangup")
    await caller.done()
