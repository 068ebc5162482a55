"""Twilio Media Streams codec with Twilio's own JSON, an in-memory pair with Twilio's side, and TwiML."""

from __future__ import annotations

import base64
import json
import xml.etree.ElementTree as ET

import pytest

from voice_gateway.audio import ulaw_decode, ulaw_encode
from voice_gateway.events import (
    AudioIn,
    AudioOut,
    CallEnded,
    CallStarted,
    Clear,
    DisplayStatus,
    Dtmf,
    ErrorKind,
    HangUp,
    Mark,
    MarkPlayed,
    TransportError,
)
from voice_gateway.transports import LocalProtocolError, TwilioCallerCodec, TwilioCodec
from voice_gateway.twiml import media_stream_url, voice_twiml, voice_twiml_for_form

SID = "MZ18ad3ab5a668481ce02b83e7395059f0"
CONNECTED = '{"event": "connected", "protocol": "Call", "version": "1.0.0"}'
START = json.dumps(
    {
        "event": "start",
        "sequenceNumber": "1",
        "start": {
            "accountSid": "AC00000000000000000000000000000000",
            "streamSid": SID,
            "callSid": "CA00000000000000000000000000000001",
            "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            "customParameters": {"caller": "+15551230000", "called": "+18005550100", "lang": "en"},
        },
        "streamSid": SID,
    }
)
PAYLOAD = base64.b64encode(b"\xff" * 80 + b"\x80" * 80).decode()  # 20 ms: silence, then full scale
MEDIA = json.dumps(
    {
        "event": "media",
        "sequenceNumber": "3",
        "media": {"track": "inbound", "chunk": "1", "timestamp": "5", "payload": PAYLOAD},
        "streamSid": SID,
    }
)


def started() -> TwilioCodec:
    codec = TwilioCodec()
    codec.receive_data(CONNECTED)
    codec.receive_data(START)
    codec.events_received()
    return codec


def errors(codec: TwilioCodec) -> list[TransportError]:
    return [e for e in codec.events_received() if isinstance(e, TransportError)]


def test_a_call_from_connected_to_stop() -> None:
    codec = TwilioCodec()
    codec.receive_data(CONNECTED)
    assert codec.events_received() == []
    codec.receive_data(START)
    [start] = codec.events_received()
    assert start == CallStarted(
        call_id="CA00000000000000000000000000000001",
        transport="twilio",
        sample_rate=8000,
        caller="+15551230000",
        called="+18005550100",
        stream_id=SID,
        parameters={"caller": "+15551230000", "called": "+18005550100", "lang": "en"},
    )
    codec.receive_data(MEDIA)
    [audio] = codec.events_received()
    assert isinstance(audio, AudioIn) and audio.sample_rate == 8000 and audio.timestamp_ms == 5
    assert audio.pcm == b"\x00\x00" * 80 + (32124).to_bytes(2, "little") * 80 and audio.duration_ms == 20.0
    codec.receive_data(
        json.dumps(
            {"event": "dtmf", "streamSid": SID, "sequenceNumber": "5", "dtmf": {"track": "inbound_track", "digit": "1"}}
        )
    )
    codec.receive_data(
        json.dumps({"event": "mark", "sequenceNumber": "4", "streamSid": SID, "mark": {"name": "greeting"}})
    )
    assert codec.events_received() == [Dtmf("1"), MarkPlayed("greeting")]
    assert not codec.close_expected
    codec.receive_data(
        json.dumps(
            {"event": "stop", "sequenceNumber": "6", "stop": {"accountSid": "AC0", "callSid": "CA00000000000000000000000000000001"}, "streamSid": SID}
        )
    )
    assert codec.events_received() == [CallEnded("stop")]
    assert codec.close_expected
    codec.receive_eof()
    assert codec.events_received() == []  # one CallEnded per call


def test_outbound_messages_are_twilios_json() -> None:
    codec = started()
    codec.send_audio(b"\x00\x00" * 160)
    codec.send_mark("utterance-1")
    codec.send_clear()
    media, mark, clear = (json.loads(m) for m in codec.data_to_send())
    assert media == {"event": "media", "streamSid": SID, "media": {"payload": base64.b64encode(b"\xff" * 160).decode()}}
    assert mark == {"event": "mark", "streamSid": SID, "mark": {"name": "utterance-1"}}
    assert clear == {"event": "clear", "streamSid": SID}
    codec.send(AudioOut(b"", 8000))
    codec.send(DisplayStatus("listening"))  # no screen on a phone line: ignored
    assert codec.data_to_send() == []
    with pytest.raises(LocalProtocolError, match="16000 Hz audio"):
        codec.send(AudioOut(b"\x00\x00", 16000))
    with pytest.raises(LocalProtocolError, match="before Twilio's 'start'"):
        TwilioCodec().send_clear()


def test_hangup_ends_the_call_and_asks_to_close() -> None:
    codec = started()
    codec.send(HangUp("caller_done"))
    assert codec.events_received() == [CallEnded("caller_done")] and codec.close_expected
    codec.send_audio(b"\x00\x00")  # late pipeline audio is dropped
    assert codec.data_to_send() == []


def test_abrupt_disconnect_ends_a_started_call() -> None:
    codec = started()
    codec.receive_eof()
    assert codec.events_received() == [CallEnded("disconnected")]
    never_started = TwilioCodec()
    never_started.receive_eof()
    assert never_started.events_received() == []


@pytest.mark.parametrize(
    ("message", "kind", "text"),
    [
        ('{"event": "media", ', ErrorKind.MALFORMED, "not JSON"),
        (b"\xff\xfe\x00garbage", ErrorKind.MALFORMED, "not JSON"),
        ("[1, 2]", ErrorKind.MALFORMED, "'event'"),
        ('{"event": "dance"}', ErrorKind.UNKNOWN_EVENT, "unknown event 'dance'"),
        ('{"event": "media", "media": {"payload": "!!notbase64!!"}}', ErrorKind.BAD_PAYLOAD, "base64"),
        ('{"event": "media", "media": {"payload": 5}}', ErrorKind.MALFORMED, "'media.payload' must be a str"),
        ('{"event": "dtmf", "dtmf": {"digit": "12"}}', ErrorKind.BAD_PAYLOAD, "DTMF digit '12'"),
        ('{"event": "mark", "mark": {}}', ErrorKind.MALFORMED, "'mark.name'"),
        (START, ErrorKind.OUT_OF_ORDER, "a second 'start'"),
        (MEDIA.replace(SID, "MZother"), ErrorKind.MALFORMED, "not 'MZ18ad"),
    ],
)
def test_bad_messages_are_error_events_and_the_stream_goes_on(message: str | bytes, kind: ErrorKind, text: str) -> None:
    codec = started()
    codec.receive_data(message)
    [error] = errors(codec)
    assert error.kind is kind and text in error.message and not error.fatal
    codec.receive_data(MEDIA)
    assert [type(e) for e in codec.events_received()] == [AudioIn]


def test_media_before_start_is_dropped_with_an_error() -> None:
    codec = TwilioCodec()
    codec.receive_data(MEDIA)
    [error] = errors(codec)
    assert error == TransportError(ErrorKind.OUT_OF_ORDER, "'media' before 'start'")
    codec.receive_data(START)
    assert [type(e) for e in codec.events_received()] == [CallStarted]


def test_messages_after_stop_are_errors() -> None:
    codec = started()
    codec.receive_data('{"event": "stop", "stop": {}}')
    codec.events_received()
    codec.receive_data(MEDIA)
    assert errors(codec) == [TransportError(ErrorKind.OUT_OF_ORDER, "'media' after 'stop'")]


def test_a_message_over_64_kib_is_fatal_and_ends_the_call() -> None:
    codec = started()
    big = json.dumps({"event": "media", "media": {"payload": "A" * 70_000}})
    codec.receive_data(big)
    error, ended = codec.events_received()
    assert isinstance(error, TransportError) and error.kind is ErrorKind.TOO_LARGE and error.fatal
    assert "exceeds 65536" in error.message and ended == CallEnded("protocol_error") and codec.close_expected
    codec.receive_data(MEDIA)  # a failed codec ignores the rest
    assert codec.events_received() == []


@pytest.mark.parametrize(
    ("start", "kind"),
    [
        (
            {
                "streamSid": SID,
                "callSid": "CA00000000000000000000000000000001",
                "mediaFormat": {"encoding": "audio/x-l16", "sampleRate": 16000, "channels": 1},
            },
            ErrorKind.UNSUPPORTED,
        ),
        ({"callSid": "CA00000000000000000000000000000001"}, ErrorKind.MALFORMED),
        ({"streamSid": SID, "callSid": "CA00000000000000000000000000000001", "customParameters": ["x"]}, ErrorKind.MALFORMED),
    ],
)
def test_an_unusable_start_is_fatal(start: dict[str, object], kind: ErrorKind) -> None:
    codec = TwilioCodec()
    codec.receive_data(json.dumps({"event": "start", "start": start}))
    [error] = codec.events_received()  # no CallStarted, so no CallEnded either
    assert isinstance(error, TransportError) and error.kind is kind and error.fatal and codec.close_expected


def test_in_memory_pair_with_twilios_side() -> None:
    twilio = TwilioCallerCodec(stream_sid=SID, call_sid="CA00000000000000000000000000000042", parameters={"caller": "+15550001111"})
    server = TwilioCodec()
    twilio.connect()
    twilio.send_audio(b"\x10\x00" * 250)  # 500 bytes: one 20 ms frame now, the rest waits
    twilio.flush_audio()
    twilio.send_dtmf("#")
    for message in twilio.data_to_send():
        server.receive_data(message)
    started_event, first, second, key = server.events_received()
    assert (
        isinstance(started_event, CallStarted)
        and started_event.call_id == "CA00000000000000000000000000000042"
        and started_event.caller == "+15550001111"
    )
    assert isinstance(first, AudioIn) and isinstance(second, AudioIn) and key == Dtmf("#")
    assert (first.timestamp_ms, second.timestamp_ms) == (0, 20)
    assert len(first.pcm) == len(second.pcm) == 320

    bot_voice = ulaw_decode(bytes(range(96, 256)))  # values mu-law carries exactly
    server.send_audio(bot_voice)
    server.send_mark("m1")
    server.send_clear()
    for message in server.data_to_send():
        twilio.receive_data(message)
    audio, mark, clear = twilio.events_received()
    assert isinstance(audio, AudioOut) and audio.pcm == bot_voice
    assert (mark, clear) == (Mark("m1"), Clear())
    twilio.send_mark_played("m1")
    twilio.stop()
    for message in twilio.data_to_send():
        server.receive_data(message)
    assert server.events_received() == [MarkPlayed("m1"), CallEnded("stop")]


def test_twilio_side_counters_are_strings() -> None:
    twilio = TwilioCallerCodec(stream_sid=SID)
    twilio.connect()
    twilio.send_audio(bytes(640))
    connected, start, media1, media2 = (json.loads(m) for m in twilio.data_to_send())
    assert connected == json.loads(CONNECTED) and "sequenceNumber" not in connected
    assert start["sequenceNumber"] == "1" and start["start"]["mediaFormat"]["encoding"] == "audio/x-mulaw"
    assert media2["sequenceNumber"] == "3" and media2["media"]["chunk"] == "2" and media2["media"]["timestamp"] == "20"
    assert base64.b64decode(media1["media"]["payload"]) == ulaw_encode(bytes(320))


def test_voice_twiml_connects_a_stream_with_the_caller_as_a_parameter() -> None:
    twiml = voice_twiml("wss://bot.example.com/media/twilio", "+15551230000", "+18005550100", {"note": 'a"<b>&c'})
    assert twiml == (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="wss://bot.example.com/media/twilio">'
        '<Parameter name="caller" value="+15551230000"/><Parameter name="called" value="+18005550100"/>'
        '<Parameter name="note" value="a&quot;&lt;b&gt;&amp;c"/></Stream></Connect></Response>'
    )
    stream = ET.fromstring(twiml).find("Connect/Stream")
    assert stream is not None and stream.findall("Parameter")[2].get("value") == 'a"<b>&c'
    form = {"From": "+15551230000", "To": "+18005550100", "CallSid": "CA00000000000000000000000000000001"}
    parameters = ET.fromstring(voice_twiml_for_form(form, "wss://x/media/twilio")).findall("Connect/Stream/Parameter")
    assert {p.get("name"): p.get("value") for p in parameters} == {
        "caller": "+15551230000",
        "called": "+18005550100",
        "callSid": "CA00000000000000000000000000000001",
    }
    assert media_stream_url("https://bot.example.com/") == "wss://bot.example.com/media/twilio"
    assert media_stream_url("http://127.0.0.1:8000") == "ws://127.0.0.1:8000/media/twilio"
    with pytest.raises(ValueError):
        voice_twiml("https://not-a-websocket")
    with pytest.raises(ValueError):
        media_stream_url("ftp://x")
