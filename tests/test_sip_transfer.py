"""Transfers out of a SIP call when callpilot leaves it (`Transfer`: the backup number, an agent's blind
transfer), over real UDP on loopback: a phone that takes REFER gets one and places the new call itself; a phone
that does not is bridged by callpilot to the target it dials, audio relayed both ways until one hangs up."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from tests.sip_peers import CallerPhone, Listener, wait_for
from voice_gateway.audio.g711 import ulaw_encode
from voice_gateway.events import AudioIn, CallEnded, CallStarted, InboundEvent, Transfer
from voice_gateway.transports.connection import CallConnection
from voice_gateway.transports.sip.message import SipMessage, parse_message, response
from voice_gateway.transports.sip.outbound import dial
from voice_gateway.transports.sip.rtp import build_packet, parse_packet
from voice_gateway.transports.sip.server import SipServer

pytestmark = pytest.mark.anyio


@dataclass
class Transferrer:
    """A call handler that sends every caller on to `target` as soon as the call starts."""

    line: CallConnection
    target: str
    seen: list[InboundEvent] = field(default_factory=list)

    async def on_event(self, event: InboundEvent) -> None:
        self.seen.append(event)
        if isinstance(event, CallStarted):
            await self.line.send(Transfer(self.target))


@pytest.fixture
async def endpoints() -> AsyncIterator[tuple[SipServer, SipServer, list[Listener]]]:
    backup_calls: list[Listener] = []

    def at_backup(line: CallConnection) -> Listener:
        backup_calls.append(Listener(line))
        return backup_calls[-1]

    backup = SipServer(at_backup, host="127.0.0.1", port=0)
    await backup.start()
    target = f"sip:backup@127.0.0.1:{backup.port}"
    ours = SipServer(lambda line: Transferrer(line, target), host="127.0.0.1", port=0)
    ours.dial_target = lambda uri: dial(ours, uri, caller="4008001234")
    await ours.start()
    yield ours, backup, backup_calls
    await ours.close()
    await backup.close()


async def invite(phone: CallerPhone, *, allow: str) -> tuple[str, int]:
    """INVITE (with the phone's Allow header), answered and ACKed; returns our To tag and RTP port."""
    port = phone.sip.getsockname()[1]
    message = SipMessage(method="INVITE", uri="sip:4008001234@127.0.0.1", headers=[
        ("Via", f"SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKinv1"), ("Max-Forwards", "70"),
        ("From", "<sip:+8613812345678@127.0.0.1>;tag=phone1"), ("To", "<sip:4008001234@127.0.0.1>"),
        ("Call-ID", phone.call_id), ("CSeq", "1 INVITE"), ("Contact", f"<sip:phone@127.0.0.1:{port}>"),
        ("Allow", allow), ("Content-Type", "application/sdp")], body=phone.offer().encode())
    phone.sip.sendto(message.to_bytes(), phone.server)
    replies = await phone.responses(lambda m: m.status >= 200)
    ok = replies[-1]
    tag = (ok.get("to") or "").split("tag=")[1]
    phone.request("ACK", to_tag=tag)
    rtp_port = int(next(x.split()[1] for x in ok.body.decode().splitlines() if x.startswith("m=audio")))
    return tag, rtp_port


async def next_request(phone: CallerPhone, method: str) -> SipMessage:
    while True:
        message = parse_message(await phone.receive(timeout=8.0))
        if message.method == method:
            return message


async def test_a_phone_that_takes_refer_is_referred_to_the_target(endpoints) -> None:  # type: ignore[no-untyped-def]
    ours, backup, _ = endpoints
    phone = CallerPhone(ours.port)
    try:
        await invite(phone, allow="INVITE, ACK, BYE, CANCEL, REFER, NOTIFY")
        refer = await next_request(phone, "REFER")
        assert refer.get("refer-to") == f"<sip:backup@127.0.0.1:{backup.port}>"
        assert "tag=phone1" in (refer.get("to") or "") and refer.uri == f"sip:phone@127.0.0.1:{phone.sip.getsockname()[1]}"
        phone.sip.sendto(response(refer, 202).to_bytes(), phone.server)
        notify = SipMessage(method="NOTIFY", uri="sip:callpilot@127.0.0.1", headers=[
            ("Via", "SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKn1"), ("From", refer.get("to") or ""),
            ("To", refer.get("from") or ""), ("Call-ID", phone.call_id), ("CSeq", "2 NOTIFY"),
            ("Event", "refer"), ("Subscription-State", "terminated"), ("Content-Type", "message/sipfrag")],
            body=b"SIP/2.0 200 OK\r\n")
        phone.sip.sendto(notify.to_bytes(), phone.server)
        bye = await next_request(phone, "BYE")  # the transfer worked: we leave
        assert bye.call_id == phone.call_id
    finally:
        phone.close()


async def test_a_phone_without_refer_is_bridged_to_the_target(endpoints) -> None:  # type: ignore[no-untyped-def]
    ours, _, backup_calls = endpoints
    phone = CallerPhone(ours.port)
    try:
        tag, rtp_port = await invite(phone, allow="INVITE, ACK, BYE, CANCEL")
        await wait_for(lambda: backup_calls and any(isinstance(e, CallStarted) for e in backup_calls[0].seen))
        started = next(e for e in backup_calls[0].seen if isinstance(e, CallStarted))
        assert started.caller == "4008001234"
        frame = ulaw_encode(struct.pack("<160h", *([5000, -5000] * 80)))
        for n in range(10):  # the caller's voice reaches the target through our relay
            phone.rtp.sendto(build_packet(0, n, n * 160, 5, frame), ("127.0.0.1", rtp_port))
        await wait_for(lambda: sum(isinstance(e, AudioIn) for e in backup_calls[0].seen) >= 5)
        await backup_calls[0].line.send_audio(b"\x00\x20" * 800)  # the target's voice reaches the caller
        heard = parse_packet(await phone.receive(phone.rtp))
        assert heard[0] == 0 and len(heard[4]) == 160
        phone.request("BYE", to_tag=tag)  # the caller hangs up: the target's call ends too
        await wait_for(lambda: any(isinstance(e, CallEnded) for e in backup_calls[0].seen))
    finally:
        phone.close()
