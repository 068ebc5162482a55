"""SIP peers for the tests over real UDP on loopback: a phone that calls us (`CallerPhone`, with our echoing SIP
server as the `server` fixture), a scripted far end we dial (`FarEnd`) and a phone that answers our calls
(`AnsweringPhone`); the call handlers that keep what they saw, and waiting for a condition."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

from voice_gateway.audio.g711 import ulaw_encode
from voice_gateway.events import AudioIn, Dtmf, InboundEvent
from voice_gateway.transports.connection import CallConnection, CallGate
from voice_gateway.transports.sip.message import SipMessage, parse_message, response
from voice_gateway.transports.sip.rtp import build_packet, parse_packet
from voice_gateway.transports.sip.server import SipServer

# A phone's SDP, offer or answer: G.711 mu-law and telephone-event on its RTP port.
PHONE_SDP = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
             "m=audio {port} RTP/AVP {formats}\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n")


async def wait_for(check: Callable[[], object], timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


@dataclass
class Listener:
    """A call handler that keeps what it saw."""

    line: CallConnection
    seen: list[InboundEvent] = field(default_factory=list)

    async def on_event(self, event: InboundEvent) -> None:
        self.seen.append(event)


@dataclass
class Echo:
    """A call handler that plays the caller's audio back and hangs up on key 9."""

    line: CallConnection
    seen: list[InboundEvent] = field(default_factory=list)

    async def on_event(self, event: InboundEvent) -> None:
        self.seen.append(event)
        if isinstance(event, AudioIn):
            await self.line.send_audio(event.pcm)
        elif isinstance(event, Dtmf) and event.digit == "9":
            await self.line.hang_up("caller_pressed_9")


@pytest.fixture(name="server")
async def echo_server() -> AsyncIterator[tuple[SipServer, list[Echo]]]:
    """Our SIP server on a free port, every call echoed: two calls at most, five INVITEs a second."""
    handlers: list[Echo] = []

    def new_handler(line: CallConnection) -> Echo:
        handlers.append(Echo(line))
        return handlers[-1]

    sip = SipServer(new_handler, host="127.0.0.1", port=0, gate=CallGate(2), invites_per_second=5)
    await sip.start()
    yield sip, handlers
    await sip.close()


class CallerPhone:
    """A SIP phone on loopback that calls us: its signalling socket and its RTP socket."""

    def __init__(self, server_port: int) -> None:
        self.sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sip.bind(("127.0.0.1", 0))
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind(("127.0.0.1", 0))
        for s in (self.sip, self.rtp):
            s.setblocking(False)
        self.server = ("127.0.0.1", server_port)
        self.call_id = f"call-{id(self)}@127.0.0.1"
        self.cseq = 1

    def request(self, method: str, *, body: str = "", to_tag: str = "", call_id: str | None = None) -> None:
        port = self.sip.getsockname()[1]
        to = "<sip:4008001234@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
        cseq = self.cseq if method in ("ACK", "CANCEL") else self.cseq + (1 if method != "INVITE" else 0)
        message = SipMessage(method=method, uri="sip:4008001234@127.0.0.1", headers=[
            ("Via", f"SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{method}{cseq}"), ("Max-Forwards", "70"),
            ("From", '"Zhang" <sip:+8613812345678@127.0.0.1>;tag=phone1'), ("To", to),
            ("Call-ID", call_id or self.call_id), ("CSeq", f"{cseq} {method}"),
            ("Contact", f"<sip:phone@127.0.0.1:{port}>")] + ([("Content-Type", "application/sdp")] if body else []),
            body=body.encode())
        self.sip.sendto(message.to_bytes(), self.server)

    def offer(self, formats: str = "0 101") -> str:
        return PHONE_SDP.format(port=self.rtp.getsockname()[1], formats=formats)

    async def receive(self, sock: socket.socket | None = None, timeout: float = 5.0) -> bytes:
        loop = asyncio.get_running_loop()
        return await asyncio.wait_for(loop.sock_recv(sock or self.sip, 4096), timeout)

    async def responses(self, until: Callable[[SipMessage], bool], timeout: float = 5.0) -> list[SipMessage]:
        got: list[SipMessage] = []
        while not got or not until(got[-1]):
            got.append(parse_message(await self.receive(timeout=timeout)))
        return got

    def close(self) -> None:
        self.sip.close()
        self.rtp.close()


async def answered(phone: CallerPhone) -> tuple[str, int]:
    """INVITE -> 100, 180, 200 (with our SDP) -> ACK; returns our To tag and RTP port."""
    phone.request("INVITE", body=phone.offer())
    replies = await phone.responses(lambda m: m.status >= 200)
    assert [m.status for m in replies] == [100, 180, 200]
    ok = replies[-1]
    sdp = ok.body.decode()
    port = int(next(line.split()[1] for line in sdp.splitlines() if line.startswith("m=audio")))
    tag = (ok.get("to") or "").split("tag=")[1]
    assert "a=rtpmap:0 PCMU/8000" in sdp and "telephone-event" in sdp and ok.get("contact")
    phone.request("ACK", to_tag=tag)
    return tag, port


class FarEnd:
    """A scripted SIP peer: one UDP socket; the test reads what we send and answers as it likes."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]

    async def next(self, method: str, timeout: float = 5.0) -> tuple[SipMessage, tuple[str, int]]:
        loop = asyncio.get_running_loop()
        while True:
            data, addr = await asyncio.wait_for(loop.sock_recvfrom(self.sock, 8192), timeout)
            message = parse_message(data)
            if message.method == method:
                return message, addr

    def send(self, message: SipMessage, addr: tuple[str, int]) -> None:
        self.sock.sendto(message.to_bytes(), addr)


class AnsweringPhone(FarEnd):
    """A phone we dial at a fixed address (an agent's desk phone, a caller we call back): rings, answers, talks
    RTP, holds, hangs up as the test says."""

    def __init__(self) -> None:
        super().__init__()
        self.media = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.media.bind(("127.0.0.1", 0))
        self.media.setblocking(False)
        self.invite: SipMessage | None = None
        self.addr: tuple[str, int] = ("127.0.0.1", 0)
        self.our_rtp: tuple[str, int] = ("127.0.0.1", 0)

    async def rings(self) -> SipMessage:
        self.invite, self.addr = await self.next("INVITE")
        self.send(response(self.invite, 180, to_tag="ph"), self.addr)
        sdp = self.invite.body.decode()
        self.our_rtp = ("127.0.0.1", int(next(x.split()[1] for x in sdp.splitlines() if x.startswith("m=audio"))))
        return self.invite

    async def answers(self) -> None:
        assert self.invite is not None
        body = PHONE_SDP.format(port=self.media.getsockname()[1], formats="0 101").encode()
        self.send(response(self.invite, 200, to_tag="ph", body=body, extra=[
            ("Contact", f"<sip:phone@127.0.0.1:{self.port}>"), ("Content-Type", "application/sdp")]), self.addr)
        await self.next("ACK")

    async def heard(self, packets: int, timeout: float = 5.0) -> list[bytes]:
        loop = asyncio.get_running_loop()
        got: list[bytes] = []
        while len(got) < packets:
            got.append(parse_packet(await asyncio.wait_for(loop.sock_recv(self.media, 2048), timeout))[4])
        return got

    def says(self, n: int, seq: int = 0) -> None:
        frame = ulaw_encode(struct.pack("<160h", *([4000, -4000] * 80)))
        for i in range(n):
            self.media.sendto(build_packet(0, seq + i, (seq + i) * 160, 99, frame), self.our_rtp)

    def in_dialog(self, method: str, cseq: int, body: bytes = b"", extra: list[tuple[str, str]] | None = None) -> None:
        assert self.invite is not None
        message = SipMessage(method=method, uri="sip:callpilot@127.0.0.1", headers=[
            ("Via", f"SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{method}{cseq}"), ("Max-Forwards", "70"),
            ("From", (self.invite.get("to") or "") + ";tag=ph"), ("To", self.invite.get("from") or ""),
            ("Call-ID", self.invite.call_id), ("CSeq", f"{cseq} {method}"), *(extra or [])]
            + ([("Content-Type", "application/sdp")] if body else []), body=body)
        self.send(message, self.addr)

    def close(self) -> None:
        self.sock.close()
        self.media.close()
