"""Callbacks are dialled: the real `CallbackDialler` over the handoff service (fakeredis) places real SIP calls on
loopback to a scripted phone: busy, then no answer (CANCEL at the ring timeout), then answered, with back-off
between the attempts and every state on the callback list; dialled only when an agent of the queue is free
(or at the chosen time) and only while the queue is open; failed after the last attempt. The answered callback
opens with the original call's context and priority for the agent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import fakeredis
import pytest
from fakeredis import aioredis as fake_aioredis

from bot.dialogue.engine import BotTurn
from callpilot.callbacks import CallbackDialler, callback_opening, sip_place
from callpilot.sip_out import SipDialler
from handoff.config import BusinessHours, HandoffConfig, QueueConfig
from handoff.model import AgentStatus, CallbackRequest
from handoff.testing import Floor, decision, make_floor
from tests.clocks import RealClock
from tests.sip_peers import AnsweringPhone, Listener, wait_for
from voice_gateway.events import CallStarted
from voice_gateway.transports.sip.message import response
from voice_gateway.transports.sip.server import SipServer

pytestmark = pytest.mark.anyio


class Setup:
    def __init__(self, floor: Floor, sip: SipServer, calls: list[Listener], phone: AnsweringPhone) -> None:
        self.floor, self.sip, self.calls, self.phone = floor, sip, calls, phone
        self.changes: list[CallbackRequest] = []

    def dialler(self, **options: object) -> CallbackDialler:
        place = sip_place(SipDialler(self.sip), self.sip, ring_timeout_s=1.0)
        return CallbackDialler(lambda: self.floor.service, place, poll_s=0.1, on_change=self.changes.append,
                               **options)  # type: ignore[arg-type]

    async def callback(self, **extra: object) -> CallbackRequest:
        return await self.floor.service.schedule_callback(f"sip:+8613812345678@127.0.0.1:{self.phone.port}",
                                                          "orders", **extra)  # type: ignore[arg-type]

    async def state(self, call_id: str) -> CallbackRequest:
        found = await self.floor.service.callbacks.get(call_id)
        assert found is not None
        return found


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    config = HandoffConfig(queues={"orders": QueueConfig(), "tech": QueueConfig(hours=BusinessHours(
        timezone="UTC", days={}))})
    floor = make_floor(fake_aioredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True), tmp_path,
                       config=config, clock=RealClock())
    calls: list[Listener] = []

    def answered(line):  # type: ignore[no-untyped-def]
        calls.append(Listener(line))
        return calls[-1]

    sip = SipServer(answered, host="127.0.0.1", port=0)
    await sip.start()
    phone = AnsweringPhone()
    yield Setup(floor, sip, calls, phone)
    await sip.close()
    phone.close()


async def test_busy_then_no_answer_then_answered_with_back_off(setup: Setup) -> None:
    request = await setup.callback(due_at=time.time())
    dialler = setup.dialler(max_attempts=3, retry_s=(0.5, 0.5))
    running = asyncio.create_task(dialler.run())
    try:
        invite, addr = await setup.phone.next("INVITE")
        setup.phone.send(response(invite, 486, to_tag="b"), addr)  # 1: busy
        await setup.phone.next("ACK")
        await wait_for(lambda: any(c.state == "pending" and c.attempts == 1 for c in setup.changes))
        first = await setup.state(request.call_id)
        assert first.outcomes == ("busy",) and first.next_attempt_at >= time.time() - 0.1
        invite, addr = await setup.phone.next("INVITE", timeout=3.0)  # 2: rings, nobody answers
        setup.phone.send(response(invite, 180, to_tag="r"), addr)
        cancel, addr = await setup.phone.next("CANCEL", timeout=3.0)
        setup.phone.send(response(cancel, 200, to_tag="r"), addr)
        setup.phone.send(response(invite, 487, to_tag="r"), addr)
        await wait_for(lambda: any(c.attempts == 2 and c.state == "pending" for c in setup.changes))
        await setup.phone.rings()  # 3: answered
        await setup.phone.answers()
        await wait_for(lambda: any(c.state == "completed" for c in setup.changes))
    finally:
        running.cancel()
    done = await setup.state(request.call_id)
    assert (done.state, done.attempts, done.outcomes) == ("completed", 3, ("busy", "no_answer", "answered"))
    assert [c.state for c in setup.changes] == ["dialling", "pending", "dialling", "pending", "dialling", "completed"]
    await wait_for(lambda: setup.calls and any(isinstance(e, CallStarted) for e in setup.calls[0].seen))
    started = next(e for e in setup.calls[0].seen if isinstance(e, CallStarted))
    assert started.parameters["callback_for"] == request.call_id and started.call_id == done.callback_call_id
    assert started.caller == "+8613812345678"  # the records show whom we called


async def test_dialled_only_when_an_agent_is_free_and_the_queue_is_open(setup: Setup) -> None:
    dialler = setup.dialler()
    asap = await setup.callback()  # no time chosen: when an agent of the queue is free
    closed = await setup.floor.service.schedule_callback("+8613800000000", "tech", due_at=time.time())
    later = await setup.callback(due_at=time.time() + 3600)
    assert await dialler.tick() == []  # nobody signed in, tech closed, the other one not due
    (agent,) = await setup.floor.staff(("Ann", {"orders": 3, "tech": 3}))
    assert await setup.floor.status(agent.agent_id) is AgentStatus.AVAILABLE
    assert await dialler.tick() == [asap.call_id]  # the free agent makes it due; closed and later wait
    assert await dialler.tick() == []  # being dialled: not twice
    invite, addr = await setup.phone.next("INVITE")
    setup.phone.send(response(invite, 603, to_tag="d"), addr)  # declined: not tried again
    await wait_for(lambda: any(c.state == "failed" for c in setup.changes))
    assert (await setup.state(asap.call_id)).outcomes == ("declined",)
    assert {(await setup.state(c.call_id)).state for c in (closed, later)} == {"pending"}


async def test_the_last_busy_attempt_fails_the_callback_and_a_removed_one_is_not_dialled(setup: Setup) -> None:
    dialler = setup.dialler(max_attempts=1, retry_s=(0.1,))
    request = await setup.callback(due_at=time.time())
    assert await dialler.tick() == [request.call_id]
    invite, addr = await setup.phone.next("INVITE")
    setup.phone.send(response(invite, 486, to_tag="b"), addr)
    await wait_for(lambda: any(c.state == "failed" for c in setup.changes))
    assert (await setup.state(request.call_id)).attempts == 1
    await dialler.tick()
    other = await setup.callback(due_at=time.time())
    assert await setup.floor.service.callbacks.done(other.call_id)  # a supervisor took it off the list
    assert await dialler.tick() == []


async def test_an_answered_callback_joins_the_queue_with_the_original_context(setup: Setup) -> None:
    service = setup.floor.service
    await setup.floor.staff(("Ann", {"orders": 3}))
    await service.request("call-9", decision(skill="orders", priority=2, caller="+8613812345678"))
    request = await service.request_callback("call-9")
    assert request.context is not None and request.priority == 2
    said: list[tuple[str, str]] = []

    def say(name: str, language: str) -> str:
        said.append((name, language))
        return "calling you back"

    opening = callback_opening(lambda: service, say)
    greeting = BotTurn(messages=("Hello, how can I help?",))
    turn = await opening("sip-new", {"callback_for": "call-9"}, greeting)
    assert turn.messages == ("calling you back",) and said == [("utter_callback_opening", "en")]
    assert turn.handoff is not None
    assert (turn.handoff.skill, turn.handoff.priority, turn.handoff.reason) == ("orders", 2, "callback")
    assert [line["text"] for line in turn.handoff.transcript][-1] == "I want to talk to a person"
    assert turn.handoff.slots == {"order_number": "48215"} and turn.handoff.caller_number == "+8613812345678"
    unknown = await opening("sip-x", {"callback_for": "nope"}, greeting)
    assert unknown is greeting  # nothing known: the usual greeting


async def test_a_callback_left_dialling_by_a_dead_process_is_dialled_again(setup: Setup) -> None:
    import dataclasses

    request = await setup.callback(due_at=time.time())
    stuck = dataclasses.replace(request, state="dialling", attempts=1)  # the process died mid-dial ...
    await setup.floor.service.callbacks.update(stuck)
    held = await setup.floor.service.callbacks.claim(request.call_id, "dead-process", 60)
    dialler = setup.dialler()
    assert held and await dialler.tick() == []  # ... its lock still held: not yet
    await setup.floor.service.callbacks.release(request.call_id)  # the lock expired
    assert await dialler.tick() == [request.call_id]
    invite, addr = await setup.phone.next("INVITE")
    setup.phone.send(response(invite, 603, to_tag="d"), addr)
    await wait_for(lambda: any(c.state == "failed" for c in setup.changes))
    done = await setup.state(request.call_id)
    assert done.attempts == 1 and done.outcomes == ("declined",)  # the dead attempt is not counted twice
