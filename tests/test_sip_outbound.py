"""Calls callpilot places and phones that register to it, over real UDP on loopback: our SIP endpoint dials a
second one (answered, media both ways, BYE), and a scripted far end that is busy, never answers (CANCEL), asks
for a password (digest), or answers with nothing we speak; agents' phones REGISTER with digest authentication."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from tests.sip_peers import PHONE_SDP, FarEnd, Listener, wait_for
from voice_gateway.events import CallEnded, CallStarted
from voice_gateway.transports.connection import CallConnection
from voice_gateway.transports.sip.message import SipMessage, parse_message, response
from voice_gateway.transports.sip.outbound import DialFailed, dial
from voice_gateway.transports.sip.register import challenge_params, digest_response
from voice_gateway.transports.sip.registrar import Registrar, ha1
from voice_gateway.transports.sip.server import SipServer

pytestmark = pytest.mark.anyio


async def endpoint() -> tuple[SipServer, list[Listener]]:
    handlers: list[Listener] = []

    def new_handler(line: CallConnection) -> Listener:
        handlers.append(Listener(line))
        return handlers[-1]

    server = SipServer(new_handler, host="127.0.0.1", port=0)
    await server.start()
    return server, handlers


@pytest.fixture
async def pair() -> AsyncIterator[tuple[SipServer, list[Listener], SipServer, list[Listener]]]:
    ours, our_calls = await endpoint()
    theirs, their_calls = await endpoint()
    yield ours, our_calls, theirs, their_calls
    await ours.close()
    await theirs.close()


async def test_we_dial_another_endpoint_talk_and_hang_up(pair) -> None:  # type: ignore[no-untyped-def]
    ours, our_calls, theirs, their_calls = pair
    call = await dial(ours, f"sip:+8613812345678@127.0.0.1:{theirs.port}", caller="4008001234",
                      parameters={"callback_for": "sip-abc"})
    assert call.direction == "outbound" and call.acked and call.codec is not None
    ours.run_outbound(call)
    await wait_for(lambda: our_calls and their_calls and all(
        any(isinstance(e, CallStarted) for e in h[0].seen) for h in (our_calls, their_calls)))
    started_here = next(e for e in our_calls[0].seen if isinstance(e, CallStarted))
    started_there = next(e for e in their_calls[0].seen if isinstance(e, CallStarted))
    assert (started_here.caller, started_here.parameters["direction"]) == ("+8613812345678", "outbound")
    assert started_here.parameters["callback_for"] == "sip-abc"
    assert (started_there.caller, started_there.called) == ("4008001234", "+8613812345678")
    await our_calls[0].line.send_audio(b"\x10\x00" * 1600)  # 100 ms reaches the far end as RTP
    await wait_for(lambda: any(type(e).__name__ == "AudioIn" for e in their_calls[0].seen))
    await our_calls[0].line.hang_up("done")  # our BYE ends their side
    await wait_for(lambda: any(isinstance(e, CallEnded) for e in their_calls[0].seen))
    assert [e.reason for e in their_calls[0].seen if isinstance(e, CallEnded)] == ["hangup"]


async def test_their_bye_ends_the_call_we_placed(pair) -> None:  # type: ignore[no-untyped-def]
    ours, our_calls, theirs, their_calls = pair
    call = await dial(ours, f"sip:agent@127.0.0.1:{theirs.port}")
    ours.run_outbound(call)
    await wait_for(lambda: our_calls and their_calls)
    await their_calls[0].line.hang_up("agent_done")
    await wait_for(lambda: any(isinstance(e, CallEnded) for e in our_calls[0].seen))
    assert call.ended


async def test_busy_unknown_and_unspeakable_answers_are_failures_we_ack(pair) -> None:  # type: ignore[no-untyped-def]
    ours = pair[0]
    far = FarEnd()
    try:
        for status, outcome in ((486, "busy"), (404, "not_found"), (603, "declined"), (500, "rejected")):
            dialling = asyncio.ensure_future(dial(ours, f"sip:1001@127.0.0.1:{far.port}"))
            invite, addr = await far.next("INVITE")
            far.send(response(invite, 100), addr)
            far.send(response(invite, status, to_tag="far"), addr)
            ack, _ = await far.next("ACK")  # the refusal is acknowledged in its own transaction
            assert ack.cseq == (invite.cseq[0], "ACK") and ack.get("via") == invite.get("via")
            with pytest.raises(DialFailed) as failed:
                await dialling
            assert (failed.value.outcome, failed.value.status) == (outcome, status)
        assert not ours.outgoing and not ours.calls  # nothing left behind
    finally:
        far.sock.close()


async def test_a_phone_that_only_rings_is_cancelled_at_the_ring_timeout(pair) -> None:  # type: ignore[no-untyped-def]
    ours = pair[0]
    far = FarEnd()
    rang: list[bool] = []
    try:
        dialling = asyncio.ensure_future(dial(ours, f"sip:1001@127.0.0.1:{far.port}", ring_timeout_s=1.0,
                                              on_ringing=lambda: rang.append(True)))
        invite, addr = await far.next("INVITE")
        far.send(response(invite, 180, to_tag="far"), addr)
        cancel, _ = await far.next("CANCEL", timeout=3.0)
        assert cancel.cseq == (invite.cseq[0], "CANCEL") and cancel.get("via") == invite.get("via")
        far.send(response(cancel, 200, to_tag="far"), addr)
        far.send(response(invite, 487, to_tag="far"), addr)
        await far.next("ACK")
        with pytest.raises(DialFailed) as failed:
            await dialling
        assert failed.value.outcome == "no_answer" and rang == [True]
    finally:
        far.sock.close()


async def test_nobody_there_is_unreachable_after_retransmissions(pair) -> None:  # type: ignore[no-untyped-def]
    ours = pair[0]
    far = FarEnd()
    try:
        cancelled = asyncio.Event()
        dialling = asyncio.ensure_future(dial(ours, f"sip:1001@127.0.0.1:{far.port}", cancelled=cancelled))
        first, _ = await far.next("INVITE")
        again, _ = await far.next("INVITE", timeout=2.0)  # timer A: the same INVITE again
        assert again.get("via") == first.get("via") and again.cseq == first.cseq
        cancelled.set()  # e.g. another agent answered first
        await far.next("CANCEL", timeout=2.0)
        with pytest.raises(DialFailed) as failed:
            await dialling
        assert failed.value.outcome == "cancelled"
    finally:
        far.sock.close()


async def test_a_trunk_that_challenges_gets_our_digest_then_answers(pair) -> None:  # type: ignore[no-untyped-def]
    ours = pair[0]
    far = FarEnd()
    try:
        target = f"sip:13812345678@127.0.0.1:{far.port}"
        dialling = asyncio.ensure_future(dial(ours, target, auth=("acct7", "s3cret")))
        invite, addr = await far.next("INVITE")
        far.send(response(invite, 407, to_tag="t1", extra=[
            ("Proxy-Authenticate", 'Digest realm="trunk", nonce="abc123", qop="auth"')]), addr)
        await far.next("ACK")
        second, _ = await far.next("INVITE")
        assert second.cseq[0] == invite.cseq[0] + 1 and second.call_id == invite.call_id
        creds = challenge_params(second.get("proxy-authorization") or "")
        assert creds["username"] == "acct7" and creds["realm"] == "trunk"
        assert creds["response"] == digest_response(username="acct7", password="s3cret", realm="trunk",
                                                    nonce="abc123", method="INVITE", uri=target, qop="auth",
                                                    nc=creds["nc"], cnonce=creds["cnonce"])
        media = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        media.bind(("127.0.0.1", 0))
        body = PHONE_SDP.format(port=media.getsockname()[1], formats="8 101").replace(
            "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000").encode()
        far.send(response(second, 200, to_tag="t2", body=body, extra=[
            ("Contact", f"<sip:trunk@127.0.0.1:{far.port}>"), ("Content-Type", "application/sdp")]), addr)
        ack, _ = await far.next("ACK")
        assert ack.uri == f"sip:trunk@127.0.0.1:{far.port}" and ack.cseq == (second.cseq[0], "ACK")
        call = await dialling
        assert call.codec is not None and call.codec.payload_type == 8  # A-law, as the answer chose
        far.send(response(second, 200, to_tag="t2", body=body), addr)  # the 200 again: our ACK again
        await far.next("ACK")
        assert call.rtp is not None
        await call.rtp.close(1000)  # hanging up here is a BYE there
        bye, _ = await far.next("BYE")
        assert bye.uri == f"sip:trunk@127.0.0.1:{far.port}" and "tag=t2" in (bye.get("to") or "")
        media.close()
    finally:
        far.sock.close()


def register(sock: socket.socket, server_port: int, user: str, *, authorization: str = "", expires: int = 120,
             cseq: int = 1) -> None:
    port = sock.getsockname()[1]
    headers = [("Via", f"SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKreg{cseq}"), ("Max-Forwards", "70"),
               ("From", f"<sip:{user}@127.0.0.1>;tag=r1"), ("To", f"<sip:{user}@127.0.0.1>"),
               ("Call-ID", f"reg-{user}"), ("CSeq", f"{cseq} REGISTER"),
               ("Contact", f"<sip:{user}@10.9.8.7:5062>"), ("Expires", str(expires))]
    if authorization:
        headers.append(("Authorization", authorization))
    sock.sendto(SipMessage(method="REGISTER", uri="sip:127.0.0.1", headers=headers).to_bytes(),
                ("127.0.0.1", server_port))


async def test_agents_phones_register_with_a_digest_and_can_then_be_dialled() -> None:
    phones = {"alice": ha1("alice", "pw-alice")}
    registrar = Registrar(phones.get)
    changes: list[tuple[str, bool]] = []
    server = SipServer(lambda line: Listener(line), host="127.0.0.1", port=0, registrar=registrar)
    server.on_phone = lambda user, present: changes.append((user, present))
    await server.start()
    far = FarEnd()
    loop = asyncio.get_running_loop()

    async def reply() -> SipMessage:
        return parse_message(await asyncio.wait_for(loop.sock_recv(far.sock, 8192), 5.0))

    try:
        register(far.sock, server.port, "alice")
        challenge = await reply()
        assert challenge.status == 401
        params = challenge_params(challenge.get("www-authenticate") or "")

        def answer(password: str, user: str = "alice") -> str:
            value = digest_response(username=user, password=password, realm=params["realm"], nonce=params["nonce"],
                                    method="REGISTER", uri="sip:127.0.0.1", qop="auth", cnonce="c0ffee")
            return (f'Digest username="{user}", realm="{params["realm"]}", nonce="{params["nonce"]}", '
                    f'uri="sip:127.0.0.1", response="{value}", qop=auth, nc=00000001, cnonce="c0ffee"')

        register(far.sock, server.port, "alice", authorization=answer("wrong"), cseq=2)
        assert (await reply()).status == 403
        register(far.sock, server.port, "mallory", authorization=answer("x", "mallory"), cseq=3)
        assert (await reply()).status == 403
        register(far.sock, server.port, "alice", authorization=answer("pw-alice"), expires=10, cseq=4)
        assert (await reply()).status == 423  # shorter than the minimum: the phone is told the minimum
        register(far.sock, server.port, "alice", authorization=answer("pw-alice"), cseq=5)
        ok = await reply()
        assert ok.status == 200 and "expires=120" in (ok.get("contact") or "")
        assert changes == [("alice", True)] and registrar.refused == 2
        binding = registrar.binding("alice")
        assert binding is not None and binding.contact == "sip:alice@10.9.8.7:5062"
        assert binding.port == far.port  # reached at the address it registered from, not its private contact
        dialling = asyncio.ensure_future(dial(server, binding.contact, destination=(binding.host, binding.port)))
        invite, addr = await far.next("INVITE")
        assert invite.uri == "sip:alice@10.9.8.7:5062"
        far.send(response(invite, 486, to_tag="x"), addr)
        with pytest.raises(DialFailed):
            await dialling
        register(far.sock, server.port, "alice", authorization=answer("pw-alice"), expires=0, cseq=6)
        while (gone := await reply()).cseq[1] != "REGISTER":
            pass
        assert gone.status == 200 and registrar.binding("alice") is None
        assert changes == [("alice", True), ("alice", False)]
    finally:
        far.sock.close()
        await server.close()


def test_fuzzed_registers_and_answers_never_crash_the_registrar_or_our_invite() -> None:
    """Mutated REGISTERs (headers, digests) get a response, never an exception; mutated answers to our INVITE
    leave it in a known state."""
    import random

    from voice_gateway.transports.sip.client import OutgoingInvite
    from voice_gateway.transports.sip.message import SipParseError

    rng = random.Random(11)
    registrar = Registrar({"alice": ha1("alice", "pw")}.get)
    nonce = challenge_params(registrar.handle(SipMessage(method="REGISTER", uri="sip:x", headers=[
        ("Via", "SIP/2.0/UDP 1.2.3.4"), ("From", "<sip:alice@x>;tag=1"), ("To", "<sip:alice@x>"),
        ("Call-ID", "c"), ("CSeq", "1 REGISTER")]), "1.2.3.4", 5)[0].get("www-authenticate") or "")["nonce"]
    good = (f"REGISTER sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4\r\nFrom: <sip:alice@x>;tag=1\r\nTo: <sip:alice@x>\r\n"
            f"Call-ID: c\r\nCSeq: 2 REGISTER\r\nContact: <sip:alice@1.2.3.4:5>;expires=120\r\n"
            f'Authorization: Digest username="alice", realm="callpilot", nonce="{nonce}", uri="sip:x", '
            f'response="{"0" * 32}", qop=auth, nc=00000001, cnonce="ab"\r\n\r\n').encode()
    answer = (b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx\r\nFrom: <sip:c@127.0.0.1>;tag=a\r\n"
              b"To: <sip:1001@h>;tag=b\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContact: <sip:1001@127.0.0.1:7>\r\n"
              b"Record-Route: <sip:10.0.0.1;lr>\r\nContent-Type: application/sdp\r\n\r\n"
              b"v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\n")
    handled = 0
    for _ in range(1500):
        for base in (good, answer):
            data = bytearray(base)
            for _ in range(rng.randint(1, 6)):
                data[rng.randrange(len(data))] = rng.randrange(32, 127)
            try:
                message = parse_message(bytes(data))
            except SipParseError:
                continue
            handled += 1
            if message.is_request:
                reply, _ = registrar.handle(message, "1.2.3.4", 5)
                assert reply.status in (200, 401, 403, 423)
            else:
                outgoing = OutgoingInvite("sip:1001@h", "c", "127.0.0.1:5060", b"v=0\r\n", call_id="x")
                outgoing.on_response(message)
                assert outgoing.state in ("calling", "ringing", "answered", "failed", "cancelled")
    assert handled > 500 and "alice" not in registrar.bindings  # no mutation guessed the password
