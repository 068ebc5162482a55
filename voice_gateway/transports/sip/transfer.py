"""Sending a SIP caller on to another number when callpilot leaves the call (`Transfer`: the backup number, an
agent's blind transfer). First REFER (RFC 3515), when the caller's side says in its Allow header that it takes
one: the far end places the new call and tells us how it went in NOTIFYs (message/sipfrag); a final 2xx there
and we hang up. Otherwise (no REFER, refused, or it failed) callpilot bridges: it dials the target and relays
the audio between the two calls (G.711 decoded and encoded again, so the two sides may use different laws)
until either hangs up, then hangs up the other."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from voice_gateway.events import AudioIn
from voice_gateway.transports.sip.call import SipCall
from voice_gateway.transports.sip.message import SipMessage
from voice_gateway.transports.sip.rtp import RtpCodec
from voice_gateway.transports.sip.rtp_socket import RtpSocket

log = logging.getLogger(__name__)
NOTIFY_WAIT_S = 30.0
Dial = Callable[[str], Awaitable[SipCall]]


class TransferHost(Protocol):
    """What a transfer needs of the SIP endpoint (`SipServer`)."""

    address: str
    dial_target: Any  # Dial | None
    target_uri: Any  # Callable[[str], str]

    @property
    def port(self) -> int: ...

    def bye(self, call: SipCall) -> None: ...

    async def request_in_call(self, call: SipCall, method: str, *, extra: list[tuple[str, str]] | None = None,
                              body: bytes = b"", timeout_s: float = 32.0) -> SipMessage | None: ...


async def transfer(server: TransferHost, call: SipCall, target: str) -> str:
    """Send the caller of `call` on to `target`; returns how: refer, bridge, or failed."""
    try:
        if "REFER" in (call.invite.get("allow") or "").upper() and await _refer(server, call, target):
            server.bye(call)
            return "refer"
        if server.dial_target is not None:
            try:
                other = await server.dial_target(target)
            except Exception as exc:
                log.warning("sip call %s: transfer to %s failed: %s", call.call_id, target, exc)
            else:
                await _bridge(call, other)
                return "bridge"
        return "failed"
    finally:
        server.bye(call)
        if call.rtp is not None and call.rtp.transport is not None:
            call.rtp.transport.close()


async def _refer(server: TransferHost, call: SipCall, target: str) -> bool:
    outcome: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def notified(status_line: str) -> None:  # "SIP/2.0 100 Trying", then the final one
        parts = status_line.split()
        if len(parts) >= 2 and parts[1].isdigit() and int(parts[1]) >= 200 and not outcome.done():
            outcome.set_result(parts[1])

    call.on_notify = notified
    uri = server.target_uri(target)
    reply = await server.request_in_call(call, "REFER", timeout_s=8.0, extra=[
        ("Refer-To", f"<{uri}>"), ("Referred-By", f"<sip:callpilot@{server.address}:{server.port}>"),
        ("Contact", f"<sip:callpilot@{server.address}:{server.port}>")])
    if reply is None or not 200 <= reply.status < 300:
        log.info("sip call %s: REFER refused (%s)", call.call_id, reply.status if reply else "no answer")
        return False
    try:
        status = await asyncio.wait_for(outcome, NOTIFY_WAIT_S)
    except TimeoutError:
        return False
    log.info("sip call %s: REFER to %s -> %s", call.call_id, uri, status)
    return status.startswith("2")


async def _bridge(caller: SipCall, other: SipCall) -> None:
    """Relay audio both ways until one side hangs up (its socket closes), then hang up the other."""
    assert caller.rtp is not None and caller.codec is not None and other.rtp is not None and other.codec is not None
    caller.bridged = other.bridged = True
    near = RtpCodec(caller.call_id, payload_type=caller.codec.payload_type,
                    dtmf_payload_type=caller.codec.dtmf_payload_type, ssrc=caller.codec.ssrc ^ 0x1)
    far = other.codec
    tasks = {asyncio.create_task(_relay(caller.rtp, near, other.rtp, far)),
             asyncio.create_task(_relay(other.rtp, far, caller.rtp, near))}
    _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    with contextlib.suppress(Exception):
        far.send_hangup("transfer_over")
        await other.rtp.close(1000)  # BYE to the target, unless it hung up


async def _relay(source: RtpSocket, decode: RtpCodec, sink: RtpSocket, encode: RtpCodec) -> None:
    events = decode.events_received()  # the new stream's CallStarted
    del events
    while (data := await source.receive()) is not None:
        decode.receive_data(data)
        for event in decode.events_received():
            if isinstance(event, AudioIn):
                encode.send_audio(event.pcm)
        for packet in encode.data_to_send():
            await sink.write(packet)
