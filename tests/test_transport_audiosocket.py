"""Asterisk AudioSocket codec with byte literals: split and coalesced reads, bad frames, outbound framing."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.asterisk_dialplan import audiosocket_uuid
from voice_gateway.events import AudioIn, CallEnded, CallStarted, Dtmf, ErrorKind, MarkPlayed, TransportError
from voice_gateway.transports import AudioSocketCodec, audiosocket_caller, encode_frame

CALL = uuid.UUID("40325ec2-5efd-4bd3-805f-53576e581d13")
HELLO = b"\x01\x00\x10" + CALL.bytes
AUDIO = b"\x10\x01\x40" + bytes(range(160)) * 2  # 320 bytes: 20 ms at 8 kHz
HANGUP = b"\x00\x00\x00"


def identified() -> AudioSocketCodec:
    codec = AudioSocketCodec()
    codec.receive_data(HELLO)
    codec.events_received()
    return codec


def errors(codec: AudioSocketCodec) -> list[TransportError]:
    return [e for e in codec.events_received() if isinstance(e, TransportError)]


def test_a_call_from_uuid_to_hangup() -> None:
    codec = AudioSocketCodec()
    codec.receive_data(HELLO)
    assert codec.events_received() == [CallStarted(str(CALL), "audiosocket", 8000, stream_id=str(CALL))]
    codec.receive_data(b"\x10\x01\x40" + b"\x00" * 320)
    codec.receive_data(b"\x03\x00\x01" + b"5")
    assert codec.events_received() == [AudioIn(b"\x00" * 320, 8000), Dtmf("5")]
    codec.receive_data(HANGUP)
    assert codec.events_received() == [CallEnded("hangup")] and codec.close_expected


def test_frames_split_byte_by_byte_or_coalesced_parse_the_same() -> None:
    stream = HELLO + AUDIO + b"\x03\x00\x01#" + AUDIO + HANGUP
    whole = AudioSocketCodec()
    whole.receive_data(stream)
    expected = whole.events_received()
    assert [type(e) for e in expected] == [CallStarted, AudioIn, Dtmf, AudioIn, CallEnded]
    for size in (1, 2, 3, 7, 322, 1000):
        codec = AudioSocketCodec()
        for i in range(0, len(stream), size):
            codec.receive_data(stream[i : i + size])
        assert codec.events_received() == expected, size


@pytest.mark.parametrize(
    ("frame", "kind", "text"),
    [
        (b"\x42\x00\x04abcd", ErrorKind.UNKNOWN_EVENT, "unknown frame kind 0x42 (4 bytes skipped)"),
        (b"\x01\x00\x04abcd", ErrorKind.BAD_PAYLOAD, "UUID frame of 4 bytes; expected 16"),
        (b"\x03\x00\x02" + b"12", ErrorKind.BAD_PAYLOAD, "DTMF frame of 2 bytes; expected 1"),
        (b"\x03\x00\x01" + b"x", ErrorKind.BAD_PAYLOAD, "DTMF digit 'x'"),
        (b"\x00\x00\x01\x00", ErrorKind.BAD_PAYLOAD, "HANGUP frame of 1 bytes; expected 0"),
        (b"\x10\x00\x03abc", ErrorKind.BAD_PAYLOAD, "AUDIO frame of 3 bytes; expected an even number"),
        (b"\x10\x00\x00", ErrorKind.BAD_PAYLOAD, "AUDIO frame of 0 bytes"),
        (b"\x10\xff\xfe" + bytes(0xFFFE), ErrorKind.TOO_LARGE, "audio frame of 65534 bytes exceeds 8000"),
        (HELLO, ErrorKind.OUT_OF_ORDER, "UUID frame in state active"),
        (b"\xff\x00\x01\x02", ErrorKind.PEER_ERROR, "0x02: frame forwarding error"),
    ],
)
def test_bad_frames_are_skipped_with_an_error_and_the_stream_stays_in_sync(
    frame: bytes, kind: ErrorKind, text: str
) -> None:
    codec = identified()
    codec.receive_data(frame + AUDIO)
    events = codec.events_received()
    [error] = [e for e in events if isinstance(e, TransportError)]
    assert error.kind is kind and text in error.message and not error.fatal
    assert events[-1] == AudioIn(AUDIO[3:], 8000)


def test_an_oversize_frame_is_skipped_without_buffering_it() -> None:
    codec = identified()
    codec.receive_data(b"\x10\xff\xfe")
    assert errors(codec)[0].kind is ErrorKind.TOO_LARGE
    for _ in range(0xFFFE // 1000):
        codec.receive_data(bytes(1000))
        assert len(codec._buffer) == 0  # skipped as it arrives
    codec.receive_data(bytes(0xFFFE % 1000) + AUDIO)
    assert codec.events_received() == [AudioIn(AUDIO[3:], 8000)]


def test_audio_before_the_uuid_is_dropped_with_an_error() -> None:
    codec = AudioSocketCodec()
    codec.receive_data(AUDIO + HELLO)
    error, started = codec.events_received()
    assert error == TransportError(ErrorKind.OUT_OF_ORDER, "AUDIO frame before the UUID")
    assert isinstance(started, CallStarted)


def test_asterisk_hangup_error_ends_the_call() -> None:
    codec = identified()
    codec.receive_data(b"\xff\x00\x01\x01")
    error, ended = codec.events_received()
    assert isinstance(error, TransportError) and "hangup of calling party" in error.message
    assert ended == CallEnded("hangup") and codec.close_expected
    codec.receive_data(AUDIO)
    assert errors(codec)[0].message == "AUDIO frame after the hang-up"


def test_text_input_is_fatal() -> None:
    codec = identified()
    codec.receive_data("hello")
    error, ended = codec.events_received()
    assert isinstance(error, TransportError) and error.fatal and ended == CallEnded("protocol_error")


def test_outbound_audio_goes_in_20ms_frames_and_marks_are_local() -> None:
    codec = identified()
    codec.send_audio(b"\x01\x02" * 300)  # 600 bytes: one frame now, 280 bytes wait
    assert codec.data_to_send() == [b"\x10\x01\x40" + b"\x01\x02" * 160]
    codec.send_audio(b"\x03\x04" * 30)  # 280 + 60 = 340: one more frame
    assert codec.data_to_send() == [b"\x10\x01\x40" + b"\x01\x02" * 140 + b"\x03\x04" * 20]
    codec.send_mark("greeting")  # flushes the last 20 bytes padded with silence, then reports it played
    assert codec.data_to_send() == [b"\x10\x01\x40" + b"\x03\x04" * 10 + bytes(300)]
    assert codec.events_received() == [MarkPlayed("greeting")]
    codec.send_audio(b"\x05\x06" * 10)
    codec.send_clear()  # barge-in drops what has not gone out
    codec.flush_audio()
    assert codec.data_to_send() == []


def test_send_hangup_writes_the_hangup_frame_and_ends_the_call() -> None:
    codec = identified()
    codec.send_audio(b"\x00\x00" * 10)
    codec.send_hangup()
    assert codec.data_to_send() == [HANGUP]
    assert codec.events_received() == [CallEnded("local_hangup")] and codec.close_expected
    codec.send_audio(bytes(640))
    assert codec.data_to_send() == []


def test_encode_frame() -> None:
    assert encode_frame(0x03, b"7") == b"\x03\x00\x017"
    assert encode_frame(0x10, bytes(320))[:3] == b"\x10\x01\x40"
    with pytest.raises(ValueError):
        encode_frame(0x10, bytes(0x10000))


# The caller's number in the UUID (the README's dialplan; AudioSocket itself carries only the UUID)


DIALPLAN = audiosocket_caller.__doc__ or ""


@pytest.mark.parametrize(("callerid_num", "caller"), [
    ("+16175550142", "+16175550142"),
    ("02079460958", "02079460958"),
    ("+86 138-1234-5678", "+8613812345678"),
    ("+123456789012345678", "+456789012345678"),  # longer than E.164's 15 digits: the last 15
    ("", ""),  # withheld
    ("anonymous", ""),
])
def test_the_documented_dialplan_puts_the_caller_in_the_uuid(callerid_num: str, caller: str) -> None:
    sent = uuid.UUID(audiosocket_uuid(DIALPLAN, callerid_num))
    codec = AudioSocketCodec()
    codec.receive_data(b"\x01\x00\x10" + sent.bytes)
    assert codec.events_received() == [CallStarted(str(sent), "audiosocket", 8000, caller=caller, stream_id=str(sent))]
    assert audiosocket_caller.caller_uuid(callerid_num, "1733212345.42") == sent  # `callpilot call --caller`


def test_a_uuid_without_the_layout_carries_no_caller() -> None:
    assert audiosocket_caller.caller_from_uuid(CALL) == ""  # a random (version 4) UUID
    assert audiosocket_caller.caller_from_uuid(uuid.UUID("f167d0af-cd3a-ca11-ffff-b16175550142")) == ""
    # Two calls from one number get different UUIDs (the call ids).
    assert audiosocket_uuid(DIALPLAN, "+16175550142", "1.1") != audiosocket_uuid(DIALPLAN, "+16175550142", "1.2")


def test_the_readme_shows_the_dialplan_the_server_reads() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    lines = [line.strip() for line in DIALPLAN.splitlines() if line.strip().startswith(("exten", "same"))]
    assert len(lines) == 8 and all(line in readme for line in lines)
