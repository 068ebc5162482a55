"""Browser softphone codec: JSON control messages and binary PCM16 frames."""

from __future__ import annotations

import json

import pytest

from voice_gateway.events import (
    AudioIn,
    AudioOut,
    CallEnded,
    CallStarted,
    Clear,
    DisplayStatus,
    DisplayTranscript,
    Dtmf,
    ErrorKind,
    HangUp,
    Mark,
    MarkPlayed,
    TransportError,
)
from voice_gateway.transports import LocalProtocolError, SoftphoneCodec

START = '{"type": "start", "caller": "web:alice", "sampleRate": 16000}'


def started() -> SoftphoneCodec:
    codec = SoftphoneCodec("phone-1")
    codec.receive_data(START)
    codec.events_received()
    return codec


def test_a_browser_call() -> None:
    codec = SoftphoneCodec("phone-1")
    assert codec.sample_rate == 0
    codec.receive_data(START)
    assert codec.events_received() == [
        CallStarted("phone-1", "softphone", 16000, caller="web:alice", stream_id="phone-1")
    ]
    assert codec.sample_rate == 16000
    codec.receive_data(b"\x01\x00" * 320)
    codec.receive_data('{"type": "dtmf", "digit": "5"}')
    codec.receive_data('{"type": "mark", "name": "greeting"}')
    assert codec.events_received() == [AudioIn(b"\x01\x00" * 320, 16000), Dtmf("5"), MarkPlayed("greeting")]
    codec.receive_data('{"type": "hangup"}')
    assert codec.events_received() == [CallEnded("hangup")] and codec.close_expected


def test_outbound_messages() -> None:
    codec = started()
    codec.send(AudioOut(b"\x02\x00" * 320, 16000))
    codec.send(Mark("u1"))
    codec.send(Clear())
    codec.send(DisplayTranscript("caller", "where is my order", final=False))
    codec.send(DisplayStatus("speaking"))
    audio, *texts = codec.data_to_send()
    assert audio == b"\x02\x00" * 320
    assert [json.loads(t) for t in texts] == [
        {"type": "mark", "name": "u1"},
        {"type": "clear"},
        {"type": "transcript", "speaker": "caller", "text": "where is my order", "final": False},
        {"type": "status", "status": "speaking", "detail": ""},
    ]
    codec.send(HangUp())
    assert [json.loads(t) for t in codec.data_to_send()] == [{"type": "hangup", "reason": "local_hangup"}]
    assert codec.events_received() == [CallEnded("local_hangup")] and codec.close_expected
    with pytest.raises(LocalProtocolError):
        SoftphoneCodec("x").send_audio(b"\x00\x00")
    with pytest.raises(LocalProtocolError, match="8000 Hz audio"):
        started().send(AudioOut(b"\x00\x00", 8000))


@pytest.mark.parametrize(
    ("message", "kind", "text"),
    [
        ("{not json", ErrorKind.MALFORMED, "not JSON"),
        ('{"digit": "5"}', ErrorKind.MALFORMED, "'type'"),
        ('{"type": "audio"}', ErrorKind.MALFORMED, "'type'"),
        ('{"type": "video"}', ErrorKind.UNKNOWN_EVENT, "unknown message type 'video'"),
        ('{"type": "dtmf", "digit": 5}', ErrorKind.BAD_PAYLOAD, "DTMF digit '5'"),
        ('{"type": "mark"}', ErrorKind.MALFORMED, "string 'name'"),
        (START, ErrorKind.OUT_OF_ORDER, "'start' twice"),
        (b"\x01\x00\x02", ErrorKind.BAD_PAYLOAD, "even number of bytes, got 3"),
    ],
)
def test_bad_messages_are_errors_and_the_call_goes_on(message: str | bytes, kind: ErrorKind, text: str) -> None:
    codec = started()
    codec.receive_data(message)
    [error] = codec.events_received()
    assert isinstance(error, TransportError) and error.kind is kind and text in error.message and not error.fatal
    codec.receive_data(b"\x00\x00" * 10)
    assert codec.events_received() == [AudioIn(b"\x00\x00" * 10, 16000)]


def test_audio_before_start_and_unsupported_rates() -> None:
    codec = SoftphoneCodec("phone-2")
    codec.receive_data(b"\x00\x00")
    assert codec.events_received() == [TransportError(ErrorKind.OUT_OF_ORDER, "'audio' before 'start'")]
    codec.receive_data('{"type": "start", "sampleRate": 44100}')
    [error] = codec.events_received()
    assert isinstance(error, TransportError) and error.kind is ErrorKind.UNSUPPORTED and error.fatal
    assert codec.close_expected


def test_oversize_binary_frame_is_fatal() -> None:
    codec = started()
    codec.receive_data(bytes(64 * 1024 + 2))
    error, ended = codec.events_received()
    assert isinstance(error, TransportError) and error.kind is ErrorKind.TOO_LARGE and error.fatal
    assert ended == CallEnded("protocol_error")
