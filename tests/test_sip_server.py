"""The SIP server over real UDP sockets on loopback: a scripted phone dials, talks RTP, presses keys, hangs up,
and misbehaves (no ACK, CANCEL, unknown codecs, strangers, floods, garbage)."""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest

from tests.sip_peers import CallerPhone, Echo, answered, echo_server  # noqa: F401  (the `server` fixture)
from voice_gateway.audio.g711 import ulaw_encode
from voice_gateway.events import AudioIn, CallEnded, CallStarted, Dtmf
from voice_gateway.transports.connection import CallConnection, CallGate
from voice_gateway.transports.sip.message import SipMessage, parse_message
from voice_gateway.transports.sip.rtp import build_packet, parse_packet
from voice_gateway.transports.sip.server import SipServer

pytestmark = pytest.mark.anyio

async def test_a_call_talks_rtp_both_ways_and_the_caller_hangs_up(server: tuple[SipServer, list[Echo]]) -> None:
    sip, handlers = server
    phone = CallerPhone(sip.port)
    try:
        tag, port = await answered(phone)
        frame = ulaw_encode(struct.pack("<160h", *([3000, -3000] * 80)))
        for n in range(5):
            phone.rtp.sendto(build_packet(0, n, n * 160, 77, frame), ("127.0.0.1", port))
        echoed = parse_packet(await phone.receive(phone.rtp))
        assert echoed[0] == 0 and echoed[4] == frame  # our audio back, G.711 mu-law
        phone.request("BYE", to_tag=tag)
        (ok,) = await phone.responses(lambda m: m.status >= 200)
        assert ok.status == 200 and ok.cseq[1] == "BYE"
        for _ in range(50):
            if any(isinstance(e, CallEnded) for e in handlers[0].seen):
                break
            await asyncio.sleep(0.05)
        started = next(e for e in handlers[0].seen if isinstance(e, CallStarted))
        assert (started.transport, started.caller, started.called) == ("sip", "+8613812345678", "4008001234")
        assert [e.reason for e in handlers[0].seen if isinstance(e, CallEnded)] == ["hangup"]
    finally:
        phone.close()


async def test_a_key_that_ends_the_call_makes_us_send_bye(server: tuple[SipServer, list[Echo]]) -> None:
    sip, handlers = server
    phone = CallerPhone(sip.port)
    try:
        _tag, port = await answered(phone)
        for end in (0, 0x80, 0x80):
            phone.rtp.sendto(build_packet(101, 1, 4000, 77, struct.pack("!BBH", 9, end | 10, 800)),
                             ("127.0.0.1", port))
        (bye,) = await phone.responses(lambda m: m.method == "BYE")
        assert bye.call_id == phone.call_id and (bye.get("to") or "").endswith("tag=phone1")
        assert [e.digit for e in handlers[0].seen if isinstance(e, Dtmf)] == ["9"]
    finally:
        phone.close()


async def test_no_ack_means_the_200_is_sent_again(server: tuple[SipServer, list[Echo]]) -> None:
    sip, _ = server
    phone = CallerPhone(sip.port)
    try:
        phone.request("INVITE", body=phone.offer())
        replies: list[SipMessage] = []
        deadline = asyncio.get_running_loop().time() + 2.0
        while asyncio.get_running_loop().time() < deadline:
            try:
                replies.append(parse_message(await phone.receive(timeout=deadline - asyncio.get_running_loop().time())))
            except TimeoutError:
                break
        assert sum(r.status == 200 for r in replies) >= 2  # 0.5 s, then 1 s later: RFC 3261 timer G
        phone.request("CANCEL")  # too late to cancel an answered call the phone never ACKed: it ends it
        replies = await phone.responses(lambda m: m.status == 487)
        assert any(r.status == 200 and r.cseq[1] == "CANCEL" for r in replies)
    finally:
        phone.close()


async def test_what_we_cannot_or_will_not_answer(server: tuple[SipServer, list[Echo]]) -> None:
    sip, _ = server
    phone = CallerPhone(sip.port)
    try:
        phone.request("INVITE", body=phone.offer("9 18"), call_id="codec@x")
        (refused,) = await phone.responses(lambda m: m.status >= 200)
        assert refused.status == 488 and "PCMU" in (refused.get("warning") or "")
        phone.request("OPTIONS", call_id="ping@x")
        (options,) = await phone.responses(lambda m: m.status >= 200)
        assert options.status == 200 and "INVITE" in (options.get("allow") or "")
        phone.request("BYE", call_id="nobody@x")
        assert (await phone.responses(lambda m: m.status >= 200))[0].status == 481
        phone.request("REGISTER", call_id="reg@x")
        assert (await phone.responses(lambda m: m.status >= 200))[0].status == 501
        phone.sip.sendto(b"\x00\xffgarbage\r\n\r\n", phone.server)
        phone.sip.sendto(b"\r\n\r\n", phone.server)
        phone.request("OPTIONS", call_id="still@x")
        assert (await phone.responses(lambda m: m.status >= 200))[0].status == 200  # still serving
    finally:
        phone.close()


async def test_strangers_floods_and_full_lines_are_refused() -> None:
    def nobody(line: CallConnection) -> Echo:
        return Echo(line)

    closed = SipServer(nobody, host="127.0.0.1", port=0, allow=["10.0.0.0/8"])
    await closed.start()
    phone = CallerPhone(closed.port)
    try:
        phone.request("INVITE", body=phone.offer())
        assert (await phone.responses(lambda m: m.status >= 200))[0].status == 403
    finally:
        phone.close()
        await closed.close()
    busy = SipServer(nobody, host="127.0.0.1", port=0, gate=CallGate(0), invites_per_second=3)
    await busy.start()
    phone = CallerPhone(busy.port)
    try:
        codes = []
        for n in range(5):
            phone.request("INVITE", body=phone.offer(), call_id=f"flood{n}@x")
            codes.append([m.status for m in await phone.responses(lambda m: m.status >= 200)][-1])
        assert codes == [486, 486, 486, 503, 503]  # all lines busy; then more than 3 INVITEs a second
    finally:
        phone.close()
        await busy.close()


async def test_rtp_from_another_address_is_dropped(server: tuple[SipServer, list[Echo]]) -> None:
    sip, handlers = server
    phone = CallerPhone(sip.port)
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        _tag, port = await answered(phone)
        frame = ulaw_encode(bytes(320))
        phone.rtp.sendto(build_packet(0, 1, 160, 77, frame), ("127.0.0.1", port))  # latches on the phone
        await phone.receive(phone.rtp)
        for n in range(5):
            stranger.sendto(build_packet(0, 100 + n, 0, 66, frame), ("127.0.0.1", port))
        await asyncio.sleep(0.2)
        call = next(iter(sip.calls.values()))
        assert call.rtp is not None and call.rtp.foreign == 5
        assert sum(isinstance(e, AudioIn) for e in handlers[0].seen) == 1
    finally:
        stranger.close()
        phone.close()


async def test_the_simulated_callers_sip_line_talks_presses_keys_and_hears_bye(
        server: tuple[SipServer, list[Echo]]) -> None:
    from voice_gateway.events import AudioOut
    from voice_gateway.sip_caller import dial_sip

    sip, handlers = server
    async with dial_sip("127.0.0.1", sip.port) as line:
        tone = struct.pack("<160h", *([2000, -2000] * 80))
        heard: list[bytes] = []
        for _ in range(10):
            line.send_audio(tone)
            await asyncio.sleep(0.02)
            await line.flush()
            heard += [e.pcm for e in line.events() if isinstance(e, AudioOut)]
        assert heard  # the echo, decoded from mu-law
        line.send_dtmf("9")
        for _ in range(100):
            await line.flush()
            if line.closed:
                break
            await asyncio.sleep(0.02)
        assert line.closed  # the server hung up on key 9 with a BYE
    assert [e.digit for e in handlers[0].seen if isinstance(e, Dtmf)] == ["9"]


async def test_sip_over_tcp_answers_on_the_same_connection(server: tuple[SipServer, list[Echo]]) -> None:
    sip, handlers = server
    phone = CallerPhone(sip.port)  # its RTP socket; signalling over TCP below
    reader, writer = await asyncio.open_connection("127.0.0.1", sip.port)
    try:
        def request(method: str, body: str = "", tag: str = "", cseq: int = 1) -> None:
            message = SipMessage(method=method, uri="sip:4008001234@127.0.0.1", headers=[
                ("Via", "SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bKtcp" + method), ("Max-Forwards", "70"),
                ("From", "<sip:+16175550142@127.0.0.1>;tag=tcp1"),
                ("To", "<sip:4008001234@127.0.0.1>" + (f";tag={tag}" if tag else "")),
                ("Call-ID", "tcp-call@127.0.0.1"), ("CSeq", f"{cseq} {method}"),
                ("Contact", "<sip:phone@127.0.0.1:5999;transport=tcp>")]
                + ([("Content-Type", "application/sdp")] if body else []), body=body.encode())
            writer.write(b"\r\n\r\n" + message.to_bytes())  # a keep-alive first, then the request

        async def next_message() -> SipMessage:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))
            return parse_message(head + await reader.readexactly(length))

        request("INVITE", phone.offer())
        statuses = [(await next_message()).status for _ in range(2)]
        ok = await next_message()
        assert statuses == [100, 180] and ok.status == 200 and b"m=audio" in ok.body
        tag = (ok.get("to") or "").split("tag=")[1]
        request("ACK", tag=tag)
        request("BYE", tag=tag, cseq=2)
        bye_ok = await next_message()
        assert bye_ok.status == 200 and bye_ok.cseq == (2, "BYE")
        started = next(e for e in handlers[0].seen if isinstance(e, CallStarted))
        assert started.caller == "+16175550142"
    finally:
        writer.close()
        phone.close()


async def test_a_phone_that_never_acks_is_hung_up() -> None:
    handlers: list[Echo] = []

    def new_handler(line: CallConnection) -> Echo:
        handlers.append(Echo(line))
        return handlers[-1]

    sip = SipServer(new_handler, host="127.0.0.1", port=0, ack_timeout_s=2.0)
    await sip.start()
    phone = CallerPhone(sip.port)
    try:
        phone.request("INVITE", body=phone.offer())
        got = await phone.responses(lambda m: m.method == "BYE", timeout=6.0)
        assert sum(m.status == 200 for m in got) >= 2 and got[-1].method == "BYE"  # 200s again, then BYE
        for _ in range(50):
            if any(isinstance(e, CallEnded) for h in handlers for e in h.seen):
                break
            await asyncio.sleep(0.05)
        assert [e.reason for h in handlers for e in h.seen if isinstance(e, CallEnded)] == ["no_ack"]
    finally:
        phone.close()
        await sip.close()


async def test_registering_to_a_provider_answers_its_digest_challenge_and_refreshes() -> None:
    import hashlib

    from voice_gateway.transports.sip.register import Registration, digest_response

    assert digest_response(username="Mufasa", password="Circle Of Life", realm="testrealm@host.com",
                           nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", method="GET", uri="/dir/index.html",
                           qop="auth", nc="00000001", cnonce="0a4f113b") == "6629fae49393a05397450978507c4ef1"
    provider = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # the provider's registrar
    provider.bind(("127.0.0.1", 0))
    provider.setblocking(False)
    port = provider.getsockname()[1]
    good = Registration(f"sip:127.0.0.1:{port}", "4008001234", "s3cret", "<sip:4008001234@127.0.0.1:5060>",
                        expires=60)
    bad = Registration(f"sip:127.0.0.1:{port}", "intruder", "guess", "<sip:intruder@127.0.0.1:5060>", expires=60)
    sip = SipServer(lambda line: Echo(line), host="127.0.0.1", port=0, registrations=[good, bad])
    await sip.start()
    loop = asyncio.get_running_loop()
    passwords = {"4008001234": "s3cret", "intruder": "right"}
    seen: list[str] = []
    try:
        deadline = loop.time() + 8
        while loop.time() < deadline and not (good.state == "registered" and bad.state == "failed"):
            try:
                data, source = await asyncio.wait_for(loop.sock_recvfrom(provider, 4096), 3)
            except TimeoutError:
                break
            request = parse_message(data)
            seen.append(request.method)
            authorization = request.get("authorization")
            if authorization is None:
                reply = _reply(request, 401, [("WWW-Authenticate",
                                               'Digest realm="trunk", nonce="n0nce", qop="auth", algorithm=MD5')])
            else:
                fields = dict(part.strip().split("=", 1) for part in authorization[7:].split(","))
                values = {k: v.strip('"') for k, v in fields.items()}
                user = values["username"]
                ha1 = hashlib.md5(f"{user}:trunk:{passwords[user]}".encode()).hexdigest()
                ha2 = hashlib.md5(f"REGISTER:{values['uri']}".encode()).hexdigest()
                expected = hashlib.md5(f"{ha1}:n0nce:{values['nc']}:{values['cnonce']}:auth:{ha2}".encode()).hexdigest()
                ok = values["response"] == expected
                reply = _reply(request, 200 if ok else 401,
                               [("Contact", f"{request.get('contact')};expires=60")] if ok else
                               [("WWW-Authenticate", 'Digest realm="trunk", nonce="n0nce", qop="auth"')])
            provider.sendto(reply.to_bytes(), source)
        assert (good.state, bad.state) == ("registered", "failed"), (good, bad)
        assert "check the user and password" in bad.detail
        assert set(seen) == {"REGISTER"} and good.expires_at > 0
    finally:
        provider.close()
        await sip.close()


def _reply(request: SipMessage, status: int, extra: list[tuple[str, str]]) -> SipMessage:
    from voice_gateway.transports.sip.message import response

    return response(request, status, to_tag="reg", extra=extra)


async def test_a_session_timer_refresh_keeps_the_call(server: tuple[SipServer, list[Echo]]) -> None:
    sip, handlers = server
    phone = CallerPhone(sip.port)
    try:
        tag, port = await answered(phone)
        message = SipMessage(method="UPDATE", uri="sip:callpilot@127.0.0.1", headers=[
            ("Via", f"SIP/2.0/UDP 127.0.0.1:{phone.sip.getsockname()[1]};branch=z9hG4bKupd"),
            ("From", '"Zhang" <sip:+8613812345678@127.0.0.1>;tag=phone1'),
            ("To", f"<sip:4008001234@127.0.0.1>;tag={tag}"), ("Call-ID", phone.call_id), ("CSeq", "3 UPDATE"),
            ("Session-Expires", "1800;refresher=uac")])
        phone.sip.sendto(message.to_bytes(), phone.server)
        (ok,) = await phone.responses(lambda m: m.status >= 200)
        assert ok.status == 200 and ok.cseq == (3, "UPDATE") and (ok.get("session-expires") or "").startswith("1800")
        frame = ulaw_encode(bytes(320))
        phone.rtp.sendto(build_packet(0, 1, 160, 77, frame), ("127.0.0.1", port))
        await phone.receive(phone.rtp)  # still talking
        assert not any(isinstance(e, CallEnded) for e in handlers[0].seen)
    finally:
        phone.close()
