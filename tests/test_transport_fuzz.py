"""Fuzzing the codecs: whatever arrives, `receive_data` never raises, it only produces events."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voice_gateway.events import AudioIn, CallEnded, CallStarted, Dtmf, InboundEvent, MarkPlayed, TransportError
from voice_gateway.transports import AudioSocketCodec, SoftphoneCodec, TwilioCodec
from voice_gateway.transports.base import CodecBase

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
INBOUND = (CallStarted, AudioIn, Dtmf, MarkPlayed, CallEnded, TransportError)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


def check_lifecycle(events: list[InboundEvent]) -> None:
    """Only inbound event types; at most one start, at most one end, and no end without a start."""
    assert all(isinstance(e, INBOUND) for e in events)
    kinds = [type(e) for e in events]
    assert kinds.count(CallStarted) <= 1 and kinds.count(CallEnded) <= 1
    if CallEnded in kinds:
        assert CallStarted in kinds and kinds.index(CallStarted) < kinds.index(CallEnded)


def feed(codec: CodecBase, messages: list[bytes | str]) -> list[InboundEvent]:
    events: list[InboundEvent] = []
    for message in messages:
        codec.receive_data(message)
        events += codec.events_received()
    codec.receive_eof()
    return events + codec.events_received()


@st.composite
def audiosocket_frames(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from([0x00, 0x01, 0x03, 0x10, 0xFF, 0x02, 0x11, 0x42]))
    payload = draw(st.binary(max_size=400) | st.just(b"5") | st.binary(min_size=16, max_size=16))
    length = draw(st.just(len(payload)) | st.integers(0, 0xFFFF))
    return bytes([kind]) + length.to_bytes(2, "big") + payload


@FUZZ
@given(st.lists(audiosocket_frames() | st.binary(max_size=64), max_size=12), st.integers(1, 50))
def test_audiosocket_never_raises_and_parses_the_same_however_split(frames: list[bytes], split: int) -> None:
    stream = b"\x01\x00\x10" + bytes(16) + b"".join(frames)
    whole = feed(AudioSocketCodec(), [stream])
    check_lifecycle(whole)
    pieces: list[bytes | str] = [stream[i : i + split] for i in range(0, len(stream), split)]
    assert feed(AudioSocketCodec(), pieces) == whole


def mostly(draw: st.DrawFn, good: st.SearchStrategy[Any]) -> Any:
    """Usually a plausible value, sometimes any JSON value (so deep paths are reached and still abused)."""
    return draw(good) if draw(st.integers(0, 4)) != 4 else draw(json_values)  # hypothesis favours small integers


@st.composite
def twilio_messages(draw: st.DrawFn) -> str | bytes:
    event = draw(
        st.sampled_from(["connected", "start", "media", "media", "media", "dtmf", "mark", "stop", "clear", "x"])
    )
    message: dict[str, Any] = {"event": event, "sequenceNumber": str(draw(st.integers(0, 99)))}
    if draw(st.integers(0, 3)) == 3:
        message["streamSid"] = mostly(draw, st.sampled_from(["MZ1", "MZ2"]))
    body: dict[str, Any] = {}
    if event == "start":
        body = {"streamSid": mostly(draw, st.sampled_from(["MZ1", "MZ2"])), "callSid": mostly(draw, st.just("CA00000000000000000000000000000001"))}
        if draw(st.booleans()):
            body["mediaFormat"] = mostly(
                draw, st.just({"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1})
            )
        if draw(st.booleans()):
            body["customParameters"] = mostly(draw, st.dictionaries(st.text(max_size=5), st.text(max_size=5)))
    elif event == "media":
        body = {"payload": mostly(draw, st.sampled_from(["/w==", "gICA", "AAAA", "!!", "", "/w=", "gI CA"]))}
        body["track"] = mostly(draw, st.sampled_from(["inbound", "inbound", "outbound"]))
        body["timestamp"] = mostly(draw, st.sampled_from(["0", "20", "-1", "x", "²"]))
    elif event == "dtmf":
        body = {"digit": mostly(draw, st.sampled_from([*"0123456789*#", "x", "12"]))}
    elif event == "mark":
        body = {"name": mostly(draw, st.text(max_size=8))}
    message[event] = body if draw(st.integers(0, 5)) != 5 else draw(json_values)
    text = json.dumps(message)
    variant = draw(st.integers(0, 7))
    return text.encode() if variant == 6 else text[: len(text) // 2] if variant == 7 else text


TWILIO_START = json.dumps(
    {
        "event": "start",
        "start": {"streamSid": "MZ1", "callSid": "CA00000000000000000000000000000001", "customParameters": {"caller": "+1555"}},
        "streamSid": "MZ1",
    }
)


@FUZZ
@given(
    st.booleans(),
    st.lists(
        twilio_messages() | st.text(max_size=40) | st.binary(max_size=40) | json_values.map(json.dumps), max_size=12
    ),
)
def test_twilio_never_raises(begin: bool, messages: list[str | bytes]) -> None:
    check_lifecycle(feed(TwilioCodec(), [TWILIO_START, *messages] if begin else messages))


@st.composite
def softphone_messages(draw: st.DrawFn) -> str | bytes:
    kind = draw(st.sampled_from(["start", "dtmf", "mark", "hangup", "audio", "other"]))
    message = {"type": kind, "caller": mostly(draw, st.text(max_size=5)), "name": mostly(draw, st.text(max_size=5))}
    message["sampleRate"] = mostly(draw, st.sampled_from([8000, 16000, 44100, "16000"]))
    message["digit"] = mostly(draw, st.sampled_from(["5", "#", "55"]))
    return json.dumps(message) if draw(st.booleans()) else draw(st.binary(max_size=700))


@FUZZ
@given(st.booleans(), st.lists(softphone_messages() | st.text(max_size=30) | json_values.map(json.dumps), max_size=12))
def test_softphone_never_raises(begin: bool, messages: list[str | bytes]) -> None:
    start = '{"type": "start", "sampleRate": 16000}'
    check_lifecycle(feed(SoftphoneCodec("phone-fuzz"), [start, *messages] if begin else messages))


@pytest.mark.parametrize("data", [bytes(64 * 1024 + 1), "A" * (64 * 1024 + 1), "é" * (32 * 1024 + 1)])
def test_oversize_input_is_always_one_fatal_error(data: bytes | str) -> None:
    for codec in (TwilioCodec(), SoftphoneCodec("phone-big")):
        codec.receive_data(data)
        [error] = codec.events_received()
        assert isinstance(error, TransportError) and error.fatal and codec.close_expected
