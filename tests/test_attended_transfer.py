"""Attended transfers over the real handoff service (fakeredis), the real audio bridge and real SIP on loopback:
the agent consults an outside party (the caller hears hold music, the agent and the party hear each other),
then completes (the caller and the party hear each other; the agent's call ends) or cancels (the party gets a
BYE, the caller stays on hold); the party hanging up after completion ends the caller's call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fakeredis
import pytest
from fakeredis import aioredis as fake_aioredis

from callpilot.consult import ConsultService
from callpilot.sip_out import SipDialler
from handoff.bridge import AudioBridge, HoldSignal
from handoff.config import HandoffConfig, QueueConfig
from handoff.desk_session import DeskSession
from handoff.events import AgentLeft, CallUpdate
from handoff.model import AgentStatus
from handoff.testing import Floor, decision, make_floor
from tests.clocks import RealClock
from tests.sip_peers import Listener, wait_for
from voice_gateway.events import AudioIn, CallEnded, CallStarted
from voice_gateway.transports.connection import CallConnection
from voice_gateway.transports.sip.server import SipServer

pytestmark = pytest.mark.anyio
FRAME = b"\x00\x10" * 320  # 20 ms at 16 kHz


@dataclass
class Desk:
    """An agent's desktop without the browser: what the session sends it."""

    sent: list[dict[str, Any]] = field(default_factory=list)
    audio: list[bytes] = field(default_factory=list)

    async def send_json(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    async def send_bytes(self, pcm: bytes) -> None:
        self.audio.append(pcm)

    def states(self) -> list[str]:
        return [m["state"] for m in self.sent if m.get("type") == "consult"]


@dataclass
class Setup:
    floor: Floor
    bridge: AudioBridge
    outside: SipServer
    outside_calls: list[Listener]
    session: DeskSession
    desk: Desk

    @property
    def target(self) -> str:
        return f"sip:+8613900000000@127.0.0.1:{self.outside.port}"


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    server = fakeredis.FakeServer()
    floor = make_floor(fake_aioredis.FakeRedis(server=server, decode_responses=True), tmp_path,
                       config=HandoffConfig(queues={"orders": QueueConfig()}), clock=RealClock())
    bridge = AudioBridge(fake_aioredis.FakeRedis(server=server))
    await floor.service.start()
    ours = SipServer(lambda line: Listener(line), host="127.0.0.1", port=0)
    await ours.start()
    outside_calls: list[Listener] = []

    def outside_answers(line: CallConnection) -> Listener:
        outside_calls.append(Listener(line))
        return outside_calls[-1]

    outside = SipServer(outside_answers, host="127.0.0.1", port=0)
    await outside.start()
    consults = ConsultService(lambda: (floor.service, bridge), SipDialler(ours, caller_id="4008001234"), owner="t",
                               ring_timeout_s=3.0)
    running = asyncio.create_task(consults.run())
    (ann,) = await floor.staff(("Ann", {"orders": 3}))
    await floor.service.request("call-1", decision(skill="orders"))
    for _ in range(100):
        state = await floor.service.presence.state(ann.agent_id)
        if state.status is AgentStatus.RINGING and state.offer_id:
            break
        await asyncio.sleep(0.05)
    await floor.service.accept(ann.agent_id, state.offer_id or "")
    desk = Desk()
    session = DeskSession(ann, floor.service, bridge, desk.send_json, desk.send_bytes)
    await session.start()
    await session.bridge_call("call-1", None)
    await asyncio.sleep(0.2)
    yield Setup(floor, bridge, outside, outside_calls, session, desk)
    await session.close()
    running.cancel()
    await ours.close()
    await outside.close()
    await floor.service.stop()


async def call_updates(setup: Setup, into: list[CallUpdate]) -> None:
    async for update in setup.floor.service.call_events("call-1"):
        into.append(update)


async def test_consult_then_complete_hands_the_caller_to_the_outside_party(setup: Setup) -> None:
    updates: list[CallUpdate] = []
    following = asyncio.create_task(call_updates(setup, updates))
    async with setup.bridge.listen("call-1", "caller") as caller_hears:
        await setup.session.receive_text({"type": "consult", "number": setup.target})
        first = await asyncio.wait_for(anext(aiter(caller_hears)), 5)
        assert first == HoldSignal(True)  # the caller hears hold music while the agent consults
        await wait_for(lambda: setup.outside_calls and "talking" in setup.desk.states())
        party = setup.outside_calls[0]
        started = next(e for e in party.seen if isinstance(e, CallStarted))
        assert started.caller == "4008001234"  # the outside party sees the hotline's number
        for _ in range(10):
            await setup.session.receive_audio(FRAME)  # the agent speaks to the party ...
        await wait_for(lambda: sum(isinstance(e, AudioIn) for e in party.seen) >= 3)
        await party.line.send_audio(b"\x00\x08" * 1600)  # ... and hears it
        await wait_for(lambda: len(setup.desk.audio) >= 3)
        await setup.session.receive_text({"type": "complete_transfer"})
        await wait_for(lambda: any(m.get("type") == "call_ended" and m.get("reason") == "transferred"
                                   for m in setup.desk.sent))  # the agent's part is over
        assert await asyncio.wait_for(anext(aiter(caller_hears)), 5) == HoldSignal(False)
        heard_before = sum(isinstance(e, AudioIn) for e in party.seen)
        await setup.bridge.to_agent("call-1", FRAME)  # the caller speaks: the party hears it
        for _ in range(4):
            await setup.bridge.to_agent("call-1", FRAME)
        await wait_for(lambda: sum(isinstance(e, AudioIn) for e in party.seen) > heard_before)
        await party.line.send_audio(b"\x00\x08" * 1600)  # the party speaks: the caller hears it
        frame = await asyncio.wait_for(anext(aiter(caller_hears)), 5)
        assert isinstance(frame, bytes) and len(frame) == 640
    record = await setup.floor.service.calls.get("call-1")
    assert record.external == setup.target and not record.consult
    assert (await setup.floor.service.presence.state("ann")).status is AgentStatus.WRAP_UP
    await party.line.hang_up("done")  # the party hangs up: the caller's call ends too
    await wait_for(lambda: any(isinstance(u, AgentLeft) and u.reason == "hangup" for u in updates))
    assert (await setup.floor.service.calls.get("call-1")).state.value == "ended"
    following.cancel()


async def test_cancelling_hangs_up_the_party_and_keeps_the_caller_on_hold(setup: Setup) -> None:
    await setup.session.receive_text({"type": "consult", "number": setup.target})
    await wait_for(lambda: setup.outside_calls and "talking" in setup.desk.states())
    await setup.session.receive_text({"type": "cancel_consult"})
    party = setup.outside_calls[0]
    await wait_for(lambda: any(isinstance(e, CallEnded) for e in party.seen))
    await wait_for(lambda: "ended" in setup.desk.states())
    assert setup.session.consulting is None and setup.session.held  # back with the caller, still on hold
    record = await setup.floor.service.calls.get("call-1")
    assert record.state.value == "connected" and record.agent_id == "ann" and not record.consult
    await setup.session.receive_text({"type": "consult", "number": "not a number"})
    assert setup.desk.sent[-1]["type"] == "error" and "cannot consult" in setup.desk.sent[-1]["message"]


async def test_a_party_that_cannot_be_reached_is_reported_to_the_agent(setup: Setup) -> None:
    await setup.outside.close()  # nobody answers there any more
    await setup.session.receive_text({"type": "consult", "number": "sip:x@127.0.0.1:9"})
    await wait_for(lambda: "failed" in setup.desk.states() or "ended" in setup.desk.states(), timeout=20)
    assert setup.session.consulting is None
