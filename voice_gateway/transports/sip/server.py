"""callpilot as a SIP endpoint over UDP and TCP: INVITE / ACK / BYE / CANCEL / OPTIONS / INFO, one RTP socket per call.

Each call's media runs through `run_call` like every transport (`RtpCodec` on a `RtpSocket`), so greeting, ASR,
barge-in, IVR, handoff, recording and call records are the pipeline's. Signalling here: the INVITE's SDP offer
gets our answer (or 488), the call is answered at once (100, 180, 200) and the 200 is retransmitted until the
ACK comes (RFC 3261 timer G; no ACK in 32 s: BYE); a BYE from either side ends the call; a CANCEL that
arrives before the 200 ends it with 487; a re-INVITE (hold, session refresh) is answered with the same SDP.
Requests from addresses outside `allow` get 403; a source sending more than `invites_per_second` gets 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets
import socket
import time
from collections.abc import Sequence
from typing import Any

from voice_gateway.transports.connection import CallGate, CallLimits, HandlerFactory, run_call
from voice_gateway.transports.sip.call import Peer, SipCall, pipeline_call_id
from voice_gateway.transports.sip.client import answering_dialog, media_direction
from voice_gateway.transports.sip.message import (
    SipMessage,
    SipParseError,
    parse_message,
    response,
    uri_of,
    uri_user,
)
from voice_gateway.transports.sip.register import Registration
from voice_gateway.transports.sip.registrar import Registrar
from voice_gateway.transports.sip.rtp import RtpCodec
from voice_gateway.transports.sip.rtp_socket import RtpSocket, open_rtcp
from voice_gateway.transports.sip.sdp import SdpError, answer_sdp, parse_offer
from voice_gateway.transports.sip.stream import read_stream
from voice_gateway.transports.sip.transfer import transfer

log = logging.getLogger(__name__)
ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE, REGISTER, REFER, NOTIFY"
T1, T2, TIMER_H = 0.5, 4.0, 32.0  # RFC 3261 retransmission timers (s)
Address = tuple[str, int]


class SipServer(asyncio.DatagramProtocol):
    """Listens on UDP `host:port` (port 0: a free one); `address` is what we put in SDP and Contact."""

    def __init__(self, new_handler: HandlerFactory, *, host: str = "127.0.0.1", port: int = 5060,
                 address: str | None = None, allow: Sequence[str] = ("127.0.0.0/8", "::1/128"),
                 limits: CallLimits | None = None, gate: CallGate | None = None, invites_per_second: int = 10,
                 ack_timeout_s: float = TIMER_H, registrations: Sequence[Registration] = (),
                 registrar: Registrar | None = None) -> None:
        self.new_handler, self.host, self._port = new_handler, host, port
        self.address = address or ("127.0.0.1" if host in ("0.0.0.0", "::", "") else host)
        self.allow = [ipaddress.ip_network(net, strict=False) for net in allow]
        self.limits, self.gate, self.invites_per_second = limits, gate, invites_per_second
        self.ack_timeout_s = ack_timeout_s  # RFC 3261 timer H: no ACK by then, the call is given up (BYE)
        self.registrations = list(registrations)  # accounts at providers that want us registered
        self.registrar = registrar  # agents' phones registering to us (None: REGISTER gets 501)
        self.on_phone: Any = None  # Callable[[str, bool], None]: a phone registered (True) or left (False)
        self.outgoing: dict[str, Any] = {}  # SIP Call-ID -> Callable[[SipMessage], None] for calls we place
        self.waiting: dict[tuple[str, int], asyncio.Future[SipMessage]] = {}  # our requests in a dialog
        # Transfers: `dial_target(target)` places the call a bridged transfer needs (set by the app; None: a
        # caller whose side takes no REFER is just hung up); `target_uri` turns a number into a SIP URI.
        self.dial_target: Any = None
        # `divert()`: the backup number while new calls must go there (302 Moved Temporarily), else None;
        # `ready()`: False while the voice models load (new calls get 503, unless diverted)
        self.divert: Any = None
        self.ready: Any = None
        self.target_uri: Any = lambda target: target if target.startswith(("sip:", "sips:")) else \
            f"sip:{target}@{self.address}:{self.port}"
        self._registering: asyncio.Task[None] | None = None
        self.transport: asyncio.DatagramTransport | None = None
        self.calls: dict[str, SipCall] = {}  # by SIP Call-ID
        self.refused = 0
        self._invites: dict[str, list[float]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._tcp_server: asyncio.Server | None = None

    # Life cycle.

    async def start(self) -> None:
        """UDP, and TCP on the same port number."""
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, local_addr=(self.host, self._port))
        self._tcp_server = await asyncio.start_server(self._tcp, self.host, self.port)
        if self.registrations:
            self._registering = loop.create_task(self._register_forever(), name="sip-register")

    async def _register_forever(self) -> None:
        """Send each account's REGISTER when it is due (first, answered challenge, refresh, retry)."""
        loop = asyncio.get_running_loop()
        while True:
            for registration in self.registrations:
                request = registration.next_request(time.monotonic(), f"SIP/2.0/UDP {self.address}:{self.port}")
                if request is None or self.transport is None:
                    continue
                host, _, port = registration.registrar.split(":", 1)[1].split(";")[0].partition(":")
                try:
                    infos = await loop.getaddrinfo(host, int(port or 5060), type=socket.SOCK_DGRAM)
                except (OSError, ValueError) as exc:
                    registration.state, registration.detail = "failed", f"cannot resolve {host}: {exc}"
                    continue
                self.transport.sendto(request.to_bytes(), infos[0][4][:2])
            await asyncio.sleep(0.5)

    @property
    def port(self) -> int:
        if self.transport is None:
            return self._port
        return int(self.transport.get_extra_info("sockname")[1])

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    async def close(self, *, drain_s: float = 0.0) -> None:
        """Stop taking calls; calls in progress get `drain_s`, then BYE."""
        deadline = time.monotonic() + drain_s
        while any(not c.ended for c in self.calls.values()) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        for call in list(self.calls.values()):
            if not call.ended and call.codec is not None and call.rtp is not None:
                call.codec.send_hangup("server_shutdown")
                await call.rtp.close(1000)
        tasks = [c.task for c in self.calls.values() if c.task is not None]
        for task in tasks:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(task), 5.0)
        if self.transport is not None:
            self.transport.close()
        if self._tcp_server is not None:
            self._tcp_server.close()
        if self._registering is not None:
            self._registering.cancel()

    # Signalling.

    def datagram_received(self, data: bytes, addr: Address) -> None:
        if not data.strip():
            return  # CRLF keep-alives
        try:
            message = parse_message(data)
        except SipParseError as exc:
            log.info("sip: unreadable datagram from %s: %s", addr[0], exc)
            return
        transport = self.transport
        peer = Peer(addr[0], addr[1], lambda raw: transport.sendto(raw, addr) if transport is not None
                    and not transport.is_closing() else None)
        self._dispatch(message, peer)

    async def _tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """SIP over TCP: messages framed by Content-Length on one connection, answered on it."""
        host, port = writer.get_extra_info("peername")[:2]

        def send(raw: bytes) -> None:
            if not writer.is_closing():
                writer.write(raw)

        peer = Peer(host, port, send, "TCP")
        try:
            async for message in read_stream(reader):
                self._dispatch(message, peer)
        finally:
            writer.close()

    def _dispatch(self, message: SipMessage, addr: Peer) -> None:
        if not message.is_request:  # answers to our INVITEs, REFERs and REGISTERs; those to our BYEs need nothing
            deliver = self.outgoing.get(message.call_id)
            if deliver is not None:
                deliver(message)
            waiter = self.waiting.get((message.call_id, message.cseq[0]))
            if waiter is not None and not waiter.done() and message.status >= 200:
                waiter.set_result(message)
            for registration in self.registrations:
                if registration.call_id == message.call_id and message.status >= 200:
                    registration.on_response(message, time.monotonic())
            return
        if not self._allowed(addr.host):
            self.refused += 1
            self._send(response(message, 403, to_tag=self._tag()), addr)
            return
        handler = {"INVITE": self._invite, "ACK": self._ack, "BYE": self._bye, "CANCEL": self._cancel,
                   "OPTIONS": self._options, "INFO": self._info, "UPDATE": self._update,
                   "REGISTER": self._register, "NOTIFY": self._notify, "REFER": self._refer}.get(message.method)
        if handler is None or (message.method == "REGISTER" and self.registrar is None):
            self._send(response(message, 501, to_tag=self._tag(), extra=[("Allow", ALLOW)]), addr)
            return
        handler(message, addr)

    def _allowed(self, host: str) -> bool:
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(ip in net for net in self.allow)

    def _flooding(self, host: str) -> bool:
        now = time.monotonic()
        recent = [t for t in self._invites.get(host, []) if now - t < 1.0]
        recent.append(now)
        self._invites[host] = recent
        if len(self._invites) > 1000:  # many sources: forget the quiet ones
            self._invites = {h: t for h, t in self._invites.items() if now - t[-1] < 1.0}
        return len(recent) > self.invites_per_second

    def _invite(self, invite: SipMessage, addr: Peer) -> None:
        existing = self.calls.get(invite.call_id)
        if existing is not None:  # a retransmitted INVITE, or a re-INVITE (hold, session refresh)
            if not existing.ended:
                self._send(response(invite, 200, to_tag=existing.to_tag, body=existing.answer,
                                    extra=self._answer_headers()), addr)
                if invite.body and existing.on_media is not None and invite.cseq[0] != existing.invite.cseq[0]:
                    existing.on_media(media_direction(invite.body))
            return
        if self._flooding(addr.host):
            self._send(response(invite, 503, to_tag=self._tag(), extra=[("Retry-After", "5")]), addr)
            return
        backup = self.divert(uri_user(invite.uri) or uri_user(invite.get("to") or "")) if self.divert else None
        if backup:  # the trunk places the call to the backup number
            self._send(response(invite, 302, to_tag=self._tag(), extra=[("Contact", f"<{self.target_uri(backup)}>")]),
                       addr)
            return
        if self.ready is not None and not self.ready():
            self._send(response(invite, 503, to_tag=self._tag(), extra=[("Retry-After", "30")]), addr)
            return
        try:
            offer = parse_offer(invite.body)
        except SdpError as exc:
            self._send(response(invite, 488, to_tag=self._tag(), extra=[("Warning", f'399 callpilot "{exc}"')]),
                       addr)
            return
        if self.gate is not None and not self.gate.enter("sip"):
            self._send(response(invite, 486, to_tag=self._tag()), addr)
            return
        self._send(response(invite, 100), addr)
        task = asyncio.get_running_loop().create_task(self._answer(invite, addr, offer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, invite: SipMessage, addr: Peer, offer: Any) -> None:
        loop = asyncio.get_running_loop()
        rtp = RtpSocket((offer.address, offer.port))
        try:
            await loop.create_datagram_endpoint(lambda: rtp, local_addr=(self.host, 0))
        except OSError as exc:  # no port for the media: the caller hears 503, the line is free again
            log.error("sip: no RTP port for a call: %s", exc)
            self._send(response(invite, 503, to_tag=self._tag()), addr)
            if self.gate is not None:
                self.gate.leave()
            return
        to_tag = self._tag()
        identity = invite.get("p-asserted-identity") or invite.get("from") or ""
        called = uri_user(invite.uri) or uri_user(invite.get("to") or "")
        call_id = pipeline_call_id(invite.call_id)
        codec = RtpCodec(call_id, payload_type=offer.payload_type, dtmf_payload_type=offer.dtmf_payload_type,
                         caller=uri_user(identity), called=called, ssrc=secrets.randbits(32),
                         parameters={"sip_call_id": invite.call_id[:200]})
        rtcp = await open_rtcp(self.host, rtp.port, codec, (offer.address, offer.rtcp_port or offer.port + 1),
                               f"callpilot@{self.address}")
        answer = answer_sdp(offer, address=self.address, port=rtp.port, session_id=secrets.randbelow(2**31),
                            rtcp_port=rtcp.port if rtcp is not None else None)
        call = SipCall(invite, addr, to_tag, answer, call_id=call_id)
        call.dialog = answering_dialog(invite, to_tag, f"SIP/2.0/{addr.transport} {self.address}:{self.port}")
        call.rtp, call.codec, call.rtcp = rtp, codec, rtcp
        if rtcp is not None:
            rtcp.start()
        self.calls[invite.call_id] = call
        rtp.on_close = lambda: self._hung_up_here(call)
        self._send(response(invite, 180, to_tag=to_tag), addr)
        self._send(response(invite, 200, to_tag=to_tag, body=answer, extra=self._answer_headers()), addr)
        call.task = loop.create_task(self._run(call))
        await self._retransmit_until_ack(call)

    def _answer_headers(self) -> list[tuple[str, str]]:
        return [("Contact", f"<sip:callpilot@{self.address}:{self.port}>"), ("Allow", ALLOW),
                ("Content-Type", "application/sdp")]

    async def _run(self, call: SipCall) -> None:
        assert call.codec is not None and call.rtp is not None
        try:
            await run_call(call.codec, call.rtp, self.new_handler, self.limits)
        finally:
            call.ended = True
            if call.rtcp is not None and not (call.codec is not None and call.codec.transfer_target):
                call.rtcp.close()  # (a transferred call keeps reporting until the transfer is over: `bye`)
                log.info("sip call %s: RTP %s", call.call_id, call.rtcp.summary())
            if self.gate is not None and call.direction == "inbound":
                self.gate.leave()
            loop = asyncio.get_running_loop()
            loop.call_later(TIMER_H, self.calls.pop, call.invite.call_id, None)  # late retransmissions still match

    def run_outbound(self, call: SipCall) -> asyncio.Task[None]:
        """Run a call we placed (`outbound.dial`) through the pipeline, like an answered one."""
        call.task = asyncio.get_running_loop().create_task(self._run(call), name=f"sip-out-{call.call_id}")
        return call.task

    async def _retransmit_until_ack(self, call: SipCall) -> None:
        interval, waited = T1, 0.0
        while not call.acked and not call.ended and waited < self.ack_timeout_s:
            await asyncio.sleep(interval)
            waited += interval
            if call.acked or call.ended:
                return
            self._send(response(call.invite, 200, to_tag=call.to_tag, body=call.answer,
                                extra=self._answer_headers()), call.source)
            interval = min(interval * 2, T2)
        if not call.acked and not call.ended and call.codec is not None and call.rtp is not None:
            log.warning("sip call %s: no ACK in %.0f s; hanging up", call.call_id, self.ack_timeout_s)
            call.codec.send_hangup("no_ack")
            await call.rtp.close(1000)

    def _ack(self, ack: SipMessage, addr: Peer) -> None:
        call = self.calls.get(ack.call_id)
        if call is not None:
            call.acked = True

    def _bye(self, bye: SipMessage, addr: Peer) -> None:
        call = self.calls.get(bye.call_id)
        if call is None:
            self._send(response(bye, 481), addr)
            return
        self._send(response(bye, 200), addr)
        call.bye_sent = True  # the dialog is over: no BYE of ours
        if call.rtcp is not None and call.direction == "outbound" and call.task is None:
            call.rtcp.close()  # a call we placed without the pipeline (an agent's phone): nothing else closes it
        if call.bridged and call.rtp is not None and call.rtp.transport is not None:
            call.rtp.transport.close()  # a transfer's relay ends; it hangs up the other side
            return
        if not call.ended and call.codec is not None and call.rtp is not None:
            call.ended = True  # the caller's BYE: no BYE back
            call.codec.peer_hung_up()
            if call.rtp.transport is not None:
                call.rtp.transport.close()  # receive() returns None: run_call ends the call

    def _cancel(self, cancel: SipMessage, addr: Peer) -> None:
        call = self.calls.get(cancel.call_id)
        self._send(response(cancel, 200 if call is not None else 481), addr)
        if call is not None and not call.acked and not call.ended and call.codec is not None:
            self._send(response(call.invite, 487, to_tag=call.to_tag), call.source)
            call.ended = True
            call.codec.peer_hung_up()
            if call.rtp is not None and call.rtp.transport is not None:
                call.rtp.transport.close()

    def _update(self, update: SipMessage, addr: Peer) -> None:
        """A session-timer refresh (RFC 4028) or a media update: the call goes on as it is."""
        call = self.calls.get(update.call_id)
        if call is None or call.ended:
            self._send(response(update, 481), addr)
            return
        body, extra = (call.answer, self._answer_headers()) if update.body else (b"", [("Allow", ALLOW)])
        timer = update.get("session-expires")
        if timer:
            extra = [*extra, ("Session-Expires", timer.split(";")[0] + ";refresher=uac"), ("Require", "timer")]
        self._send(response(update, 200, to_tag=call.to_tag, body=body, extra=extra), addr)

    def _options(self, options: SipMessage, addr: Peer) -> None:
        self._send(response(options, 200, to_tag=self._tag(), extra=[("Allow", ALLOW),
                                                                     ("Accept", "application/sdp")]), addr)

    def _info(self, info: SipMessage, addr: Peer) -> None:
        call = self.calls.get(info.call_id)
        if call is None:
            self._send(response(info, 481), addr)
            return
        self._send(response(info, 200), addr)
        body = info.body.decode("utf-8", "replace")
        for line in body.splitlines():
            key, _, value = line.partition("=")
            if key.strip().lower() == "signal" and call.codec is not None:
                call.codec.key(value.strip()[:1])

    def _hung_up_here(self, call: SipCall) -> bool:
        """Our side ended the call (the bot hung up, a limit, shutdown): BYE to the caller, or (a `Transfer`)
        send the caller on; True keeps the call's RTP socket open for the transfer."""
        if call.ended:
            return False
        target = call.codec.transfer_target if call.codec is not None else None
        if target:
            call.ended = True
            task = asyncio.get_running_loop().create_task(transfer(self, call, target), name=f"transfer-{call.call_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return True
        self.bye(call)
        return False

    def bye(self, call: SipCall) -> None:
        """Hang up `call` with a BYE (once)."""
        if call.rtcp is not None:
            call.rtcp.close()
        if call.dialog is not None and not call.bye_sent:
            call.bye_sent = call.ended = True
            self._send(call.dialog.request("BYE"), call.source)

    async def request_in_call(self, call: SipCall, method: str, *, extra: list[tuple[str, str]] | None = None,
                              body: bytes = b"", timeout_s: float = TIMER_H) -> SipMessage | None:
        """Send a request (not an INVITE) inside a call, such as REFER, and wait for its final answer (None: none came);
        over UDP it is sent again on RFC 3261's timer E until answered."""
        if call.dialog is None or call.bye_sent:
            return None
        message = call.dialog.request(method, extra=extra, body=body)
        key = (call.invite.call_id, call.dialog.cseq)
        future: asyncio.Future[SipMessage] = asyncio.get_running_loop().create_future()
        self.waiting[key] = future
        interval, waited = T1, 0.0
        try:
            while waited < timeout_s:
                self._send(message, call.source)
                try:
                    return await asyncio.wait_for(asyncio.shield(future), interval)
                except TimeoutError:
                    waited += interval
                    interval = min(interval * 2, T2)
            return None
        finally:
            self.waiting.pop(key, None)

    def _register(self, request: SipMessage, addr: Peer) -> None:
        assert self.registrar is not None
        reply, changed = self.registrar.handle(request, addr.host, addr.port, addr.transport)
        self._send(reply, addr)
        if changed is not None and self.on_phone is not None:
            self.on_phone(changed, self.registrar.binding(changed) is not None)

    def _refer(self, refer: SipMessage, addr: Peer) -> None:
        """A phone's transfer button (blind transfer, RFC 3515): 202, the transfer, then a NOTIFY that it worked."""
        call = self.calls.get(refer.call_id)
        target = uri_of(refer.get("refer-to") or "").split("?", 1)[0].split(";", 1)[0]
        if call is None or call.ended:
            self._send(response(refer, 481), addr)
            return
        if call.on_refer is None or not target.startswith(("sip:", "sips:", "tel:")):
            self._send(response(refer, 403 if call.on_refer is None else 400), addr)
            return
        self._send(response(refer, 202, to_tag=call.to_tag if ";tag=" not in (refer.get("to") or "") else None), addr)
        call.on_refer(target)

        async def notify() -> None:
            await self.request_in_call(call, "NOTIFY", timeout_s=4.0, body=b"SIP/2.0 200 OK\r\n", extra=[
                ("Event", "refer"), ("Subscription-State", "terminated;reason=noresource"),
                ("Content-Type", "message/sipfrag;version=2.0")])

        task = asyncio.get_running_loop().create_task(notify())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _notify(self, notify: SipMessage, addr: Peer) -> None:
        """A REFER's progress (message/sipfrag); we only need to say we got it."""
        call = self.calls.get(notify.call_id)
        self._send(response(notify, 200 if call is not None else 481), addr)
        if call is not None and call.on_notify is not None and notify.body:
            call.on_notify(notify.body.decode("utf-8", "replace").split("\r\n", 1)[0])

    # Helpers.

    @staticmethod
    def _send(message: SipMessage, peer: Peer) -> None:
        peer.send(message.to_bytes())

    @staticmethod
    def _tag() -> str:
        return secrets.token_hex(6)
