"""A SIP phone for the simulated caller and the benchmark: dials callpilot's SIP port over UDP, talks RTP
(G.711 mu-law, RFC 4733 keys), answers the server's BYE. A `simulated_caller.CallerLine`."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
from collections.abc import AsyncIterator

from voice_gateway.audio import FrameBuffer, frame_bytes
from voice_gateway.audio.g711 import ulaw_decode, ulaw_encode
from voice_gateway.caller_lines import _SocketLine
from voice_gateway.events import AudioOut
from voice_gateway.transports.sip.call import pipeline_call_id
from voice_gateway.transports.sip.message import SipMessage, SipParseError, parse_message, response
from voice_gateway.transports.sip.rtp import DTMF_EVENTS, build_packet, parse_packet
from voice_gateway.transports.sip.sdp import PCMU

RATE = 8000
FRAME = frame_bytes(RATE)


class SipCallerLine(_SocketLine):
    """One call from a SIP phone on this machine; `dial_sip` sets it up."""

    def __init__(self, sip: socket.socket, rtp: socket.socket, server: tuple[str, int], call_id: str) -> None:
        super().__init__()
        self._sip, self._rtp, self._server = sip, rtp, server
        self.sip_call_id = call_id
        self.call_id = ""  # the pipeline's id for this call (derived from the SIP Call-ID)
        self.media: tuple[str, int] | None = None
        self.to_tag = ""
        self._frames = FrameBuffer(FRAME)
        self._sequence = self._timestamp = 0
        self._ssrc = secrets.randbits(32)
        self._cseq = 1

    def request(self, method: str, body: bytes = b"") -> None:
        port = self._sip.getsockname()[1]
        to = f"<sip:4008001234@{self._server[0]}>" + (f";tag={self.to_tag}" if self.to_tag else "")
        cseq = self._cseq if method in ("INVITE", "ACK") else self._cseq + 1
        headers = [("Via", f"SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{secrets.token_hex(6)};rport"),
                   ("Max-Forwards", "70"), ("From", "<sip:+15550100000@127.0.0.1>;tag=caller"), ("To", to),
                   ("Call-ID", self.sip_call_id), ("CSeq", f"{cseq} {method}"),
                   ("Contact", f"<sip:caller@127.0.0.1:{port}>")]
        if body:
            headers.append(("Content-Type", "application/sdp"))
        message = SipMessage(method=method, uri=f"sip:4008001234@{self._server[0]}:{self._server[1]}",
                             headers=headers, body=body)
        self._sip.sendto(message.to_bytes(), self._server)

    def send_audio(self, pcm16: bytes) -> None:
        for frame in self._frames.push(pcm16):
            self._send_rtp(PCMU, ulaw_encode(frame))
            self._timestamp += 160

    def send_dtmf(self, digit: str) -> None:
        event = DTMF_EVENTS.index(digit)
        for end, duration in ((0, 400), (0x80, 800), (0x80, 800), (0x80, 800)):
            self._send_rtp(101, bytes([event, end | 10]) + duration.to_bytes(2, "big"))
        self._timestamp += 800

    def _send_rtp(self, payload_type: int, payload: bytes) -> None:
        if self.media is not None and not self._closed:
            self._rtp.sendto(build_packet(payload_type, self._sequence, self._timestamp, self._ssrc, payload),
                             self.media)
            self._sequence += 1

    async def flush(self) -> None:
        """Read what arrived: RTP becomes `AudioOut`; a BYE from the server ends the call."""
        while True:
            try:
                data = self._rtp.recv(2048)
            except BlockingIOError:
                break
            with contextlib.suppress(ValueError):
                payload_type, _seq, _ts, _ssrc, payload = parse_packet(data)
                if payload_type == PCMU:
                    self._events.append(AudioOut(ulaw_decode(payload), RATE))
        while True:
            try:
                data = self._sip.recv(8192)
            except BlockingIOError:
                break
            with contextlib.suppress(SipParseError):
                message = parse_message(data)
                if message.method == "BYE":
                    self._sip.sendto(response(message, 200).to_bytes(), self._server)
                    self._closed = True
        await asyncio.sleep(0)

    async def hang_up(self) -> None:
        if not self._closed:
            self._cseq += 1
            self.request("BYE")
            self._closed = True
        self._sip.close()
        self._rtp.close()


@contextlib.asynccontextmanager
async def dial_sip(host: str, port: int, *, timeout_s: float = 10.0) -> AsyncIterator[SipCallerLine]:
    """INVITE callpilot at `host:port`, ACK its 200; the line is answered when this yields."""
    sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for s in (sip, rtp):
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
    line = SipCallerLine(sip, rtp, (host, port), f"{secrets.token_hex(8)}@127.0.0.1")
    line.call_id = pipeline_call_id(line.sip_call_id)
    offer = (f"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
             f"m=audio {rtp.getsockname()[1]} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
             f"a=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\n").encode()
    line.request("INVITE", offer)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        data = await asyncio.wait_for(loop.sock_recv(sip, 8192), max(0.01, deadline - loop.time()))
        with contextlib.suppress(SipParseError):
            answer = parse_message(data)
            if answer.status >= 300:
                raise ConnectionRefusedError(f"SIP {answer.status} {answer.reason}")
            if answer.status == 200:
                break
    sdp = answer.body.decode()
    address = next(line_.split()[2] for line_ in sdp.splitlines() if line_.startswith("c="))
    media_port = int(next(line_.split()[1] for line_ in sdp.splitlines() if line_.startswith("m=audio")))
    line.media, line.to_tag = (address, media_port), (answer.get("to") or "").split("tag=")[-1]
    line.request("ACK")
    try:
        yield line
    finally:
        await line.hang_up()
