"""SIP, SDP and RTP as sans-I/O codecs, tested with bytes: what a trunk or phone sends, and what we answer."""

from __future__ import annotations

import contextlib
import random
import struct

import numpy as np
import pytest

from voice_gateway.audio.g711 import alaw_decode, alaw_encode, ulaw_encode
from voice_gateway.events import AudioIn, AudioOut, CallStarted, Dtmf, HangUp, Mark, MarkPlayed, TransportError
from voice_gateway.transports.sip import RtpCodec, SdpError, SipParseError, answer_sdp, parse_message, parse_offer
from voice_gateway.transports.sip.message import response, uri_of, uri_user
from voice_gateway.transports.sip.rtp import build_packet, parse_packet
from voice_gateway.transports.sip.sdp import PCMA, PCMU

INVITE = (
    "INVITE sip:4008001234@callpilot.example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK776asdhds\r\n"
    "Max-Forwards: 70\r\n"
    "To: <sip:4008001234@callpilot.example.com>\r\n"
    'From: "Zhang Wei" <sip:+8613812345678@trunk.example.net>;tag=1928301774\r\n'
    "P-Asserted-Identity: <sip:+8613812345678@trunk.example.net>\r\n"
    "Call-ID: a84b4c76e66710@pc33.example.net\r\n"
    "CSeq: 314159 INVITE\r\n"
    "Contact: <sip:caller@10.0.0.5:5060>\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: {length}\r\n\r\n{body}"
)
OFFER = ("v=0\r\no=- 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n"
         "m=audio 40000 RTP/AVP 9 8 0 101\r\na=rtpmap:9 G722/8000\r\na=rtpmap:8 PCMA/8000\r\n"
         "a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\n")


def invite(body: str = OFFER) -> bytes:
    return INVITE.format(length=len(body.encode()), body=body).encode()


def test_an_invite_from_a_trunk_parses() -> None:
    message = parse_message(invite())
    assert (message.method, message.uri, message.call_id, message.cseq) == (
        "INVITE", "sip:4008001234@callpilot.example.com", "a84b4c76e66710@pc33.example.net", (314159, "INVITE"))
    assert uri_user(message.get("p-asserted-identity") or "") == "+8613812345678"
    assert uri_user(message.uri) == "4008001234"
    assert uri_of(message.get("contact") or "") == "sip:caller@10.0.0.5:5060"
    assert message.body.decode() == OFFER


def test_compact_headers_folding_and_case() -> None:
    text = ("BYE sip:callpilot@127.0.0.1 SIP/2.0\r\nv: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK1\r\n"
            "f: <sip:a@b>;tag=1\r\nt: <sip:c@d>;tag=2\r\ni: xyz\r\nCSEQ: 2\r\n BYE\r\nl: 0\r\n\r\n")
    message = parse_message(text.encode())
    assert message.call_id == "xyz" and message.cseq == (2, "BYE") and message.get("VIA") is not None


def test_a_response_carries_the_requests_transaction() -> None:
    request = parse_message(invite())
    answer = parse_message(response(request, 200, to_tag="abc", body=b"v=0\r\n").to_bytes())
    assert (answer.status, answer.reason) == (200, "OK")
    assert answer.get("to", ) == "<sip:4008001234@callpilot.example.com>;tag=abc"
    assert answer.get("via") == request.get("via") and answer.get("cseq") == "314159 INVITE"
    assert answer.get("content-length") == "5"


@pytest.mark.parametrize(("data", "why"), [
    (b"", "empty"),
    (b"\r\n\r\n", "empty"),
    (b"HELLO WORLD\r\n\r\n", "start line"),
    (b"INVITE sip:a@b SIP/3.0\r\n\r\n", "start line"),
    (b"SIP/2.0 2000 OK\r\n\r\n", "status line"),
    (invite().replace(b"Call-ID: a84b4c76e66710@pc33.example.net\r\n", b""), "call-id"),
    (invite().replace(f"Content-Length: {len(OFFER)}".encode(), b"Content-Length: 9999"), "Content-Length"),
    (invite().replace(b"Max-Forwards: 70", b"Max Forwards: 70"), "bad header"),
    (b"INVITE sip:a@b SIP/2.0\r\n" + b"X-Pad: " + b"x" * 20000 + b"\r\n\r\n", "exceeds"),
    (b"INVITE sip:a@b SIP/2.0\r\nVia: \xff\xfe\r\n\r\n", "UTF-8"),
])
def test_malformed_sip_is_refused_with_a_reason(data: bytes, why: str) -> None:
    with pytest.raises(SipParseError, match=why):
        parse_message(data)


def test_fuzzed_datagrams_never_crash_the_parser() -> None:
    rng = random.Random(5)
    base = invite()
    for _ in range(2000):
        data = bytearray(base)
        for _ in range(rng.randint(1, 8)):
            position = rng.randrange(len(data))
            data[position] = rng.randrange(256)
        cut = bytes(data[: rng.randint(0, len(data))])
        with contextlib.suppress(SipParseError):
            parse_message(cut)


def test_the_offer_picks_g711_and_telephone_events() -> None:
    offer = parse_offer(OFFER.encode())
    assert (offer.address, offer.port, offer.payload_type, offer.dtmf_payload_type) == ("10.0.0.5", 40000, PCMA, 101)
    answer = answer_sdp(offer, address="192.0.2.7", port=31000, session_id=42).decode()
    assert "c=IN IP4 192.0.2.7" in answer and "m=audio 31000 RTP/AVP 8 101" in answer
    assert "a=rtpmap:8 PCMA/8000" in answer and "a=rtpmap:101 telephone-event/8000" in answer
    only_ulaw = parse_offer(OFFER.replace("9 8 0 101", "0").encode())
    assert (only_ulaw.payload_type, only_ulaw.dtmf_payload_type) == (PCMU, None)


@pytest.mark.parametrize(("body", "why"), [
    (OFFER.replace("9 8 0 101", "9 18"), "no codec we speak"),
    (OFFER.replace("m=audio 40000 RTP/AVP 9 8 0 101", "m=video 40000 RTP/AVP 96"), "no audio"),
    (OFFER.replace("c=IN IP4 10.0.0.5\r\n", ""), "no connection address"),
    (OFFER.replace("40000", "99999"), "out of range"),
    ("\xff", "no audio"),
])
def test_an_offer_we_cannot_answer(body: str, why: str) -> None:
    with pytest.raises(SdpError, match=why):
        parse_offer(body.encode())


def test_alaw_matches_the_reference() -> None:
    import audioop  # the reference implementation, in the standard library until Python 3.13

    pcm = np.arange(-32768, 32768, 3, dtype="<i2").tobytes()
    assert alaw_encode(pcm) == audioop.lin2alaw(pcm, 2)
    assert alaw_decode(bytes(range(256))) == audioop.alaw2lin(bytes(range(256)), 2)


def tone(n: int) -> bytes:
    return (np.sin(np.arange(160) * 0.3 + n) * 8000).astype("<i2").tobytes()


def rtp(sequence: int, payload: bytes, payload_type: int = PCMU, timestamp: int | None = None) -> bytes:
    return build_packet(payload_type, sequence, 160 * sequence if timestamp is None else timestamp, 1234, payload)


def audio_of(codec: RtpCodec) -> list[bytes]:
    return [e.pcm for e in codec.events_received() if isinstance(e, AudioIn)]


def test_the_codec_starts_the_call_with_who_is_calling() -> None:
    codec = RtpCodec("sip-1", caller="+8613812345678", called="4008001234")
    (started,) = codec.events_received()
    assert isinstance(started, CallStarted)
    assert (started.transport, started.sample_rate, started.caller, started.called) == (
        "sip", 8000, "+8613812345678", "4008001234")


def test_packets_out_of_order_are_put_back_in_order_and_duplicates_dropped() -> None:
    codec = RtpCodec("sip-2")
    codec.events_received()
    frames = {n: ulaw_encode(tone(n)) for n in range(10, 16)}
    for n in (10, 12, 11, 11, 13, 15, 14):
        codec.receive_data(rtp(n, frames[n]))
    played = audio_of(codec)
    assert [p == ulaw_decode_of(frames[n]) for p, n in zip(played, range(10, 16), strict=True)] == [True] * 6
    assert codec.late_or_duplicate == 1


def ulaw_decode_of(payload: bytes) -> bytes:
    from voice_gateway.audio.g711 import ulaw_decode

    return ulaw_decode(payload)


def test_a_lost_packet_is_filled_with_silence_and_a_jump_resynchronises() -> None:
    codec = RtpCodec("sip-3")
    codec.events_received()
    frame = ulaw_encode(tone(1))
    for n in (1, 2, 4, 5, 6, 7):  # 3 never comes
        codec.receive_data(rtp(n, frame))
    played = audio_of(codec)
    # 1, 2, then 4-7 waiting: once more than 3 wait, 3 is given up on (silence in its place) and 4-7 play
    assert len(played) == 7 and played[2] == bytes(320) and played[3] != bytes(320)
    codec.receive_data(rtp(30000, frame))  # the peer restarted its stream
    codec.receive_data(rtp(30001, frame))
    assert len(audio_of(codec)) >= 2


def test_rfc4733_keys_are_reported_once_each() -> None:
    codec = RtpCodec("sip-4", dtmf_payload_type=101)
    codec.events_received()
    for timestamp, event in ((1000, 5), (2000, 11)):
        for end, duration in ((0, 160), (0, 320), (0x80, 480), (0x80, 480), (0x80, 480)):
            codec.receive_data(rtp(1, struct.pack("!BBH", event, end | 10, duration), 101, timestamp))
    assert [e.digit for e in codec.events_received() if isinstance(e, Dtmf)] == ["5", "#"]


def test_bad_packets_are_errors_not_crashes() -> None:
    codec = RtpCodec("sip-5")
    codec.events_received()
    for data in (b"", b"\x00" * 12, b"\x80", rtp(1, b"x", 18), b"\x90\x00" + b"\x00" * 10, b"\x80\x00" * 800):
        codec.receive_data(data)
    errors = [e for e in codec.events_received() if isinstance(e, TransportError)]
    assert len(errors) == 6 and not any(e.fatal for e in errors)
    assert not codec.close_expected


def test_outbound_audio_is_20_ms_g711_packets_with_our_clock() -> None:
    codec = RtpCodec("sip-6", payload_type=PCMA, ssrc=99)
    codec.events_received()
    codec.send(AudioOut(tone(0) * 3 + tone(1)[:100], 8000))
    packets = [parse_packet(p) for p in codec.data_to_send()]  # type: ignore[arg-type]
    assert [(pt, seq, ts, ssrc) for pt, seq, ts, ssrc, _ in packets] == [(8, 0, 0, 99), (8, 1, 160, 99),
                                                                         (8, 2, 320, 99)]
    assert alaw_decode(packets[0][4]) == alaw_decode(alaw_encode(tone(0)))
    codec.send(Mark("s1"))  # the rest of the sentence goes out, padded, and the mark is "played"
    assert len(codec.data_to_send()) == 1
    assert [e.name for e in codec.events_received() if isinstance(e, MarkPlayed)] == ["s1"]
    codec.send(HangUp("goodbye"))
    assert codec.close_expected
