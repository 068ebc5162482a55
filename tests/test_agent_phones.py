"""Agents on phones against the real handoff service (fakeredis) and real SIP over loopback: the ACD rings two
agents' phones at once (ringall), the first to answer gets the call and the other phone gets a CANCEL; the
answering agent hears the whisper, then the caller; the agent's voice reaches the caller's side of the bridge;
the phone's re-INVITE puts the caller on hold; the phone's BYE hangs up and the agent is wrapped up and
available again; a busy phone declines; the caller hanging up sends BYE to the agent's phone."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import fakeredis
import pytest
from fakeredis import aioredis as fake_aioredis

from callpilot.agent_phones import AgentPhones, whisper_text
from callpilot.sip_out import SipDialler
from handoff.bridge import AudioBridge, HoldSignal
from handoff.config import HandoffConfig, QueueConfig
from handoff.model import AgentStatus
from handoff.testing import Floor, decision, make_floor
from tests.clocks import RealClock
from tests.sip_peers import PHONE_SDP, AnsweringPhone, Listener, wait_for
from voice_gateway.audio.g711 import ulaw_encode
from voice_gateway.transports.sip.message import response
from voice_gateway.transports.sip.server import SipServer

pytestmark = pytest.mark.anyio
WHISPER = struct.pack("<1600h", *([2000, -2000] * 800))  # 200 ms at 8 kHz stands in for the spoken whisper


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[tuple[Floor, AudioBridge, AgentPhones, AnsweringPhone, AnsweringPhone]]:
    server = fakeredis.FakeServer()
    config = HandoffConfig(queues={"orders": QueueConfig(strategy="ringall", ring_timeout_s=8.0)},
                           heartbeat_ttl_s=30.0)
    floor = make_floor(fake_aioredis.FakeRedis(server=server, decode_responses=True), tmp_path, config=config,
                       clock=RealClock())
    bridge = AudioBridge(fake_aioredis.FakeRedis(server=server))
    await floor.service.start()
    sip = SipServer(lambda line: Listener(line), host="127.0.0.1", port=0)
    await sip.start()
    ann_phone, bob_phone = AnsweringPhone(), AnsweringPhone()
    ann = floor.hire("Ann", {"orders": 3})
    bob = floor.hire("Bob", {"orders": 3})
    floor.directory.set_phone(ann.agent_id, f"sip:ann@127.0.0.1:{ann_phone.port}")
    floor.directory.set_phone(bob.agent_id, f"sip:bob@127.0.0.1:{bob_phone.port}")

    async def speak(text: str) -> bytes:
        return WHISPER

    phones = AgentPhones(floor.directory.agents, lambda: (floor.service, bridge), SipDialler(sip), speak,
                         wrap_up_s=0.3)
    phones.start()
    yield floor, bridge, phones, ann_phone, bob_phone
    await phones.close()
    await sip.close()
    await floor.service.stop()
    ann_phone.close()
    bob_phone.close()


async def statuses(floor: Floor) -> dict[str, AgentStatus]:
    return {a: await floor.status(a) for a in ("ann", "bob")}


async def test_ringall_rings_both_phones_the_first_to_answer_talks_and_the_other_stops(desk) -> None:  # type: ignore[no-untyped-def]
    floor, bridge, phones, ann_phone, bob_phone = desk
    for _ in range(100):  # phones with fixed addresses are on duty as soon as callpilot runs
        if set((await statuses(floor)).values()) == {AgentStatus.AVAILABLE}:
            break
        await asyncio.sleep(0.05)
    await floor.service.request("call-1", decision(skill="orders", caller="+8613812345678"))
    ann_invite, _ = await asyncio.gather(ann_phone.rings(), bob_phone.rings())
    assert "+8613812345678" in (ann_invite.get("from") or "")  # the phone shows who is calling
    async with bridge.listen("call-1", "caller") as caller_hears:
        await ann_phone.answers()
        cancel, addr = await bob_phone.next("CANCEL")  # the other phone stops ringing
        bob_phone.send(response(cancel, 200, to_tag="ph"), addr)
        assert bob_phone.invite is not None
        bob_phone.send(response(bob_phone.invite, 487, to_tag="ph"), addr)
        await bob_phone.next("ACK")
        assert (await statuses(floor))["ann"] is AgentStatus.ON_CALL
        whisper = await ann_phone.heard(10)  # the whisper first: our 200 ms, as G.711 packets
        assert whisper[0] == ulaw_encode(WHISPER[:320])
        await wait_for(lambda: phones.sessions["ann"].call_id == "call-1" and phones.sessions["ann"].held is False)
        await asyncio.sleep(0.3)  # past the whisper: bridged
        for _ in range(5):
            await bridge.to_agent("call-1", b"\x00\x10" * 320)  # the caller's voice at 16 kHz
        assert len(await ann_phone.heard(3)) == 3
        ann_phone.says(20)  # the agent's voice
        frames = []
        async for item in caller_hears:
            frames.append(item)
            if len(frames) >= 5:
                break
        assert all(isinstance(f, bytes) and len(f) == 640 for f in frames)  # 20 ms at 16 kHz for the caller
        hold = PHONE_SDP.format(port=ann_phone.media.getsockname()[1], formats="0").encode() + b"a=sendonly\r\n"
        ann_phone.in_dialog("INVITE", 2, hold)
        async for item in caller_hears:
            if isinstance(item, HoldSignal):
                assert item.on
                break
    view = await floor.service.snapshot()
    assert [c.on_hold for c in view.live_calls if c.call_id == "call-1"] == [True]
    ann_phone.in_dialog("BYE", 3)  # the agent hangs up on the phone
    await wait_for(lambda: phones.sessions["ann"].call_id is None)
    for _ in range(100):
        if (await statuses(floor))["ann"] is AgentStatus.AVAILABLE:
            break
        await asyncio.sleep(0.05)
    record = await floor.service.calls.get("call-1")
    assert record.state.value == "ended" and record.agent_id == "ann"
    assert (await statuses(floor))["ann"] is AgentStatus.AVAILABLE  # wrapped up as "phone", ready again


async def test_a_busy_phone_declines_and_the_caller_hanging_up_hangs_up_the_phone(desk) -> None:  # type: ignore[no-untyped-def]
    floor, _, phones, ann_phone, bob_phone = desk
    await wait_for(lambda: len(phones.sessions) == 2)
    await asyncio.sleep(0.5)
    await floor.service.request("call-2", decision(skill="orders"))
    invite, addr = await ann_phone.next("INVITE")
    ann_phone.send(response(invite, 486, to_tag="busy"), addr)
    await ann_phone.next("ACK")
    await bob_phone.rings()
    await bob_phone.answers()
    await wait_for(lambda: phones.sessions["bob"].call_id == "call-2")
    await floor.service.caller_hung_up("call-2")
    bye, addr = await bob_phone.next("BYE", timeout=8.0)  # the caller left: the agent's phone hangs up
    bob_phone.send(response(bye, 200), addr)
    record = await floor.service.calls.get("call-2")
    assert record.agent_id == "bob"


async def test_the_phones_transfer_button_and_the_desktop_act_on_a_call_taken_on_the_phone(desk) -> None:  # type: ignore[no-untyped-def]
    from handoff.desk_session import DeskSession

    floor, bridge, phones, ann_phone, bob_phone = desk
    await wait_for(lambda: len(phones.sessions) == 2)
    await asyncio.sleep(0.5)
    await floor.service.request("call-3", decision(skill="orders"))
    await asyncio.gather(ann_phone.rings(), bob_phone.rings())
    await ann_phone.answers()
    cancel, addr = await bob_phone.next("CANCEL")
    bob_phone.send(response(cancel, 200, to_tag="ph"), addr)
    assert bob_phone.invite is not None
    bob_phone.send(response(bob_phone.invite, 487, to_tag="ph"), addr)
    await bob_phone.next("ACK")
    await wait_for(lambda: phones.sessions["ann"].call_id == "call-3")
    sent: list[dict[str, object]] = []

    async def send_json(message: dict[str, object]) -> None:
        sent.append(message)

    async def send_bytes(pcm: bytes) -> None:
        pass

    screen = DeskSession(floor.directory.get("ann"), floor.service, bridge, send_json, send_bytes)
    await screen.start()
    await screen.receive_text({"type": "hold", "on": True})  # the desktop's hold acts on the phone's call
    view = await floor.service.snapshot()
    assert [c.on_hold for c in view.live_calls if c.call_id == "call-3"] == [True]
    await screen.receive_text({"type": "hold", "on": False})
    ann_phone.in_dialog("REFER", 5, extra=[("Refer-To", "<sip:bob@127.0.0.1>")])  # the phone's transfer button
    notify, addr = await ann_phone.next("NOTIFY")
    assert notify.body.startswith(b"SIP/2.0 200") and notify.get("event") == "refer"
    ann_phone.send(response(notify, 200), addr)
    invite = await bob_phone.rings()  # transferred to Bob: his phone rings
    assert invite.call_id != (ann_phone.invite.call_id if ann_phone.invite else "")
    bye, addr = await ann_phone.next("BYE", timeout=8.0)  # Ann's phone is done with it
    ann_phone.send(response(bye, 200), addr)
    await screen.close()


def test_the_whisper_names_the_queue_and_the_wait_in_the_calls_language() -> None:
    from handoff.model import HandoffContext

    context = HandoffContext("c", "orders", 3, None, None, "en", (), (), {}, (), "caller_asked", "", 0.0, 41.6)
    assert whisper_text(context) == "orders queue, caller waited 42 seconds."
    zh = HandoffContext("c", "orders", 3, None, None, "zh", (), (), {}, (), "caller_asked", "", 0.0, 8.0)
    assert whisper_text(zh) == "订单队列，来电已等待8秒。"
