"""Placing a call from callpilot's SIP endpoint: `dial()` drives an `OutgoingInvite` over the server's socket
(retransmitted on RFC 3261 timer A, given up on timer B, cancelled at the ring timeout) and, once answered,
returns the call as a `SipCall` with its RTP socket and codec, known to the server like an inbound call (a BYE
from the far end ends it; ours goes out when its RTP socket closes). What runs on it is the caller's choice:
the pipeline (`SipServer.run_outbound`, a callback) or an audio pump (an agent's phone)."""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

from voice_gateway.transports.sip.call import Peer, SipCall, pipeline_call_id
from voice_gateway.transports.sip.client import OutgoingInvite, offer_sdp
from voice_gateway.transports.sip.message import SipMessage, uri_user
from voice_gateway.transports.sip.rtp import RtpCodec
from voice_gateway.transports.sip.rtp_socket import RtpSocket, open_rtcp
from voice_gateway.transports.sip.sdp import answer_sdp

if TYPE_CHECKING:
    from voice_gateway.transports.sip.server import Address, SipServer

T1, T2, TIMER_B = 0.5, 4.0, 32.0

# What a refusal means to whoever placed the call (a callback retries busy and no_answer).
OUTCOMES = {486: "busy", 600: "busy", 480: "no_answer", 408: "no_answer", 487: "no_answer", 603: "declined",
            404: "not_found", 484: "not_found", 604: "not_found"}


class DialFailed(Exception):
    """The call was not answered: `outcome` is busy, no_answer, declined, not_found, rejected, unreachable or
    cancelled; `status` the SIP code (0: none came)."""

    def __init__(self, outcome: str, status: int = 0, reason: str = "") -> None:
        super().__init__(f"{outcome}" + (f" ({status} {reason})" if status else ""))
        self.outcome, self.status, self.reason = outcome, status, reason


async def resolve(uri: str) -> Address:
    """Where a SIP URI's requests go: its host and port (5060 when none)."""
    rest = uri.split(":", 1)[1] if ":" in uri else uri
    hostport = rest.split("@", 1)[-1].split(";", 1)[0].split(">", 1)[0]
    host, _, port = hostport.partition(":")
    infos = await asyncio.get_running_loop().getaddrinfo(host, int(port or 5060), type=socket.SOCK_DGRAM,
                                                         family=socket.AF_INET)
    found = infos[0][4]
    return str(found[0]), int(found[1])


async def dial(server: SipServer, target: str, *, caller: str = "callpilot", destination: Address | None = None,
               auth: tuple[str, str] | None = None, ring_timeout_s: float = 30.0,
               cancelled: asyncio.Event | None = None, parameters: dict[str, str] | None = None,
               on_ringing: Callable[[], None] | None = None, extra: list[tuple[str, str]] | None = None) -> SipCall:
    """INVITE `target` (sip:user@host[:port]); requests go to `destination` (a registered phone's address, a
    trunk's proxy) or the URI's host. Returns the answered call; raises `DialFailed` otherwise."""

    if server.transport is None:
        raise DialFailed("unreachable", 0, "the SIP endpoint is not running")
    loop = asyncio.get_running_loop()
    try:
        where = destination or await resolve(target)
    except (OSError, ValueError) as exc:
        raise DialFailed("unreachable", 0, f"cannot resolve {target}: {exc}") from None
    rtp = RtpSocket(("0.0.0.0", 0))
    await loop.create_datagram_endpoint(lambda: rtp, local_addr=(server.host, 0))
    rtcp = await open_rtcp(server.host, rtp.port, None, ("0.0.0.0", 0), f"callpilot@{server.address}")
    transport = server.transport
    peer = Peer(where[0], where[1], lambda raw: transport.sendto(raw, where) if not transport.is_closing() else None)
    outgoing = OutgoingInvite(target, caller, f"{server.address}:{server.port}",
                              offer_sdp(address=server.address, port=rtp.port, session_id=secrets.randbelow(2**31),
                                        rtcp_port=rtcp.port if rtcp is not None else None),
                              auth=auth, extra=list(extra or []))
    replies: asyncio.Queue[SipMessage] = asyncio.Queue()
    server.outgoing[outgoing.call_id] = replies.put_nowait
    answered = False
    try:
        await _until_final(outgoing, peer, replies, ring_timeout_s, cancelled, on_ringing)
        if outgoing.state != "answered" or outgoing.answer is None:
            raise _failure(outgoing, cancelled)
        answer = outgoing.answer
        rtp.remote = (answer.address, answer.port)
        call = SipCall(outgoing.invite(), peer, outgoing.from_value.split("tag=")[-1],
                       answer_sdp(answer, address=server.address, port=rtp.port,
                                  session_id=secrets.randbelow(2**31)),
                       call_id=pipeline_call_id(outgoing.call_id), acked=True, dialog=outgoing.dialog,
                       direction="outbound")
        call.rtp = rtp
        call.codec = RtpCodec(call.call_id, payload_type=answer.payload_type,
                              dtmf_payload_type=answer.dtmf_payload_type, caller=uri_user(target),
                              called=caller, ssrc=secrets.randbits(32),
                              parameters={"direction": "outbound", "sip_call_id": outgoing.call_id,
                                          **(parameters or {})})
        call.rtcp = rtcp
        if rtcp is not None:
            rtcp.codec, rtcp.remote = call.codec, (answer.address, answer.rtcp_port or answer.port + 1)
            rtcp.start()
        server.calls[outgoing.call_id] = call
        rtp.on_close = lambda: server._hung_up_here(call)
        answered = True

        def again(reply: SipMessage) -> None:  # the far end sends its 200 again until our ACK arrives
            for request in outgoing.on_response(reply):
                peer.send(request.to_bytes())

        server.outgoing[outgoing.call_id] = again
        loop.call_later(TIMER_B, server.outgoing.pop, outgoing.call_id, None)
        return call
    finally:
        if not answered:
            server.outgoing.pop(outgoing.call_id, None)
            if rtp.transport is not None:
                rtp.transport.close()
            if rtcp is not None and rtcp.transport is not None:
                rtcp.transport.close()


async def _until_final(outgoing: OutgoingInvite, peer: Peer, replies: asyncio.Queue[SipMessage],
                       ring_timeout_s: float, cancelled: asyncio.Event | None,
                       on_ringing: Callable[[], None] | None) -> None:
    """Send the INVITE and take its responses until a final one (CANCEL at the ring timeout or when asked)."""
    loop = asyncio.get_running_loop()
    peer.send(outgoing.invite().to_bytes())
    start = loop.time()
    retransmit_at, interval = start + T1, T1
    cancel_sent_at: float | None = None
    while outgoing.state in ("calling", "ringing"):
        now = loop.time()
        if cancel_sent_at is None and (now - start >= ring_timeout_s or (cancelled is not None and cancelled.is_set())):
            request = outgoing.cancel()
            if request is not None:
                peer.send(request.to_bytes())
            cancel_sent_at = now
        if cancel_sent_at is not None and now - cancel_sent_at > TIMER_B / 4:  # the far end never answered CANCEL
            outgoing.state, outgoing.status, outgoing.reason = "failed", 408, "no answer to CANCEL"
            return
        if now - start > TIMER_B and outgoing.state == "calling":
            outgoing.state, outgoing.status, outgoing.reason = "failed", 408, "no response (timer B)"
            return
        try:
            reply = await asyncio.wait_for(replies.get(), max(0.02, min(retransmit_at - now, 0.25)))
        except TimeoutError:
            if outgoing.state == "calling" and loop.time() >= retransmit_at and cancel_sent_at is None:
                peer.send(outgoing.invite().to_bytes())
                interval = min(interval * 2, T2)
                retransmit_at = loop.time() + interval
            continue
        was = outgoing.state
        for request in outgoing.on_response(reply):
            peer.send(request.to_bytes())
        if outgoing.state == "calling" and reply.status < 200:
            retransmit_at = float("inf")  # a provisional answer: the INVITE arrived
        if was != "ringing" and outgoing.state == "ringing":
            retransmit_at = float("inf")
            if on_ringing is not None:
                on_ringing()
        if outgoing.state == "calling" and outgoing._challenged and reply.status in (401, 407):
            retransmit_at, interval = loop.time() + T1, T1  # the authenticated INVITE is a new transaction


def _failure(outgoing: OutgoingInvite, cancelled: asyncio.Event | None) -> DialFailed:
    if cancelled is not None and cancelled.is_set():
        return DialFailed("cancelled", outgoing.status, outgoing.reason)
    if outgoing.state == "cancelled" or (outgoing.status == 408 and "CANCEL" in outgoing.reason):
        return DialFailed("no_answer", outgoing.status, outgoing.reason)
    if outgoing.status == 408 and "timer B" in outgoing.reason:
        return DialFailed("unreachable", outgoing.status, outgoing.reason)
    return DialFailed(OUTCOMES.get(outgoing.status, "rejected"), outgoing.status, outgoing.reason)
