"""The voice endpoints' checks (issue 14 items 1, 2, 7, 9 and the memory bounds), each against what an
attacker or a flood would do: forged call ids, unsigned webhooks, streams without their token, connections
that never start, more calls than lines, softphone floods; and the pieces (signature, tokens, ids, paths, the
bounded event queue, the streamed recording) on their own."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import uuid
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from callpilot.voice_access import RateLimiter
from tests.voice_helpers import VoiceServer, voice_server
from voice_gateway.call_log import read_call_log
from voice_gateway.events import AudioIn, Dtmf
from voice_gateway.recording import CallRecorder, RecordingFile, free_name
from voice_gateway.transports.call_ids import BadCallId, check_call_id, file_for_call
from voice_gateway.transports.connection import CallGate, EventQueue
from voice_gateway.twilio_security import media_token, twilio_signature, valid_twilio_signature

TOKEN = "twilio-auth-token-for-tests-0001"
PUBLIC = "https://hotline.example.com"


# The pieces -------------------------------------------------------------------------------------------------

def test_the_signature_matches_twilios_documented_example() -> None:
    params = {"CallSid": "CA1234567890ABCDE", "Caller": "+14158675309", "Digits": "1234", "From": "+14158675309",
              "To": "+18005551212"}
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert twilio_signature("12345", url, params) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert not valid_twilio_signature("12345", url, {**params, "Digits": "9999"}, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    assert not valid_twilio_signature("12345", url, params, None)


@pytest.mark.parametrize(("transport", "call_id"), [
    ("twilio", "/tmp/evil"), ("twilio", "../../etc/cron.d/x"), ("twilio", "CA1"), ("twilio", "ca" + "0" * 32),
    ("audiosocket", "not-a-uuid"), ("softphone", "phone-../x"), ("softphone", ""), ("sip", "a/b"),
])
def test_call_ids_of_the_wrong_shape_are_refused(transport: str, call_id: str) -> None:
    with pytest.raises(BadCallId):
        check_call_id(transport, call_id)


def test_call_ids_of_the_right_shape_and_files_inside_their_folder(tmp_path: Path) -> None:
    assert check_call_id("twilio", "CA" + "0a" * 16) and check_call_id("audiosocket", str(uuid.uuid4()))
    assert file_for_call(tmp_path, "phone-1a2b") == tmp_path.resolve() / "phone-1a2b.wav"
    for bad in ("../x", "/etc/passwd", "a/b", "..", "x\x00y"):
        with pytest.raises(BadCallId):
            file_for_call(tmp_path, bad)


def test_a_recording_never_overwrites_another(tmp_path: Path) -> None:
    first = RecordingFile(tmp_path / "CAsame.wav", 8000)
    first.write(bytes(3200))
    assert first.finish() == tmp_path / "CAsame.wav"
    second = RecordingFile(tmp_path / "CAsame.wav", 8000)
    second.write(bytes(6400))
    assert second.finish() == tmp_path / "CAsame-2.wav" == free_name(tmp_path / "CAsame.wav").with_name("CAsame-2.wav")
    with wave.open(str(tmp_path / "CAsame.wav")) as kept:
        assert kept.getnframes() == 800  # the first call's recording is untouched
    assert (tmp_path / "CAsame.wav").stat().st_mode & 0o777 == 0o600


def test_the_recording_streams_to_disk_and_holds_only_the_unsettled_tail(tmp_path: Path) -> None:
    recorder, file = CallRecorder(8000), RecordingFile(tmp_path / "c.wav", 8000)
    for second in range(60):  # a minute of call; the bot talks every other second
        recorder.add_caller(bytes([second % 7]) * 16000)
        if second % 2:
            recorder.add_bot(b"\x10\x00" * 4000)
        file.write(recorder.drain())
        assert recorder.held_bytes <= 16000  # never more than the bot audio queued past the caller clock
    recorder.add_bot(b"\x20\x00" * 8000)  # a goodbye still playing at hang-up
    file.write(recorder.drain(everything=True))
    path = file.finish()
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getnframes()) == (2, 60 * 8000 + 4000 + 8000)  # the last bot audio ran on
    assert not list(tmp_path.glob(".*.part"))


def test_the_event_queue_drops_old_audio_never_control_events() -> None:
    async def go() -> list[Any]:
        queue = EventQueue(max_audio=3)
        for n in range(10):
            queue.put_nowait(AudioIn(bytes([n]) * 320, 8000))
            if n == 4:
                queue.put_nowait(Dtmf("5"))
        assert queue.dropped_audio == 7 and queue.qsize() == 4
        return [await queue.get() for _ in range(4)]

    kept = asyncio.run(go())
    assert isinstance(kept[0], Dtmf) and [a.pcm[0] for a in kept[1:]] == [7, 8, 9]


def test_the_gate_and_the_rate_limiter() -> None:
    refused: list[str] = []
    gate = CallGate(2, on_reject=refused.append)
    assert gate.enter("twilio") and gate.enter("audiosocket") and not gate.enter("softphone")
    gate.leave()
    assert gate.enter("softphone") and refused == ["softphone"] and gate.rejected == 1
    now = [0.0]
    limiter = RateLimiter(2, clock=lambda: now[0])
    assert limiter.allow("a") and limiter.allow("a") and not limiter.allow("a") and limiter.allow("b")
    now[0] = 30.0  # half a minute later: one more
    assert limiter.allow("a") and not limiter.allow("a")


# A real server ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VoiceServer]:
    tmp = tmp_path_factory.mktemp("voice-security")
    env = {"CALLPILOT_TWILIO_AUTH_TOKEN": TOKEN, "CALLPILOT_PUBLIC_URL": PUBLIC, "CALLPILOT_MAX_CALLS": "1",
           "CALLPILOT_RECORD_CALLS": "true", "CALLPILOT_RECORDINGS_DIR": str(tmp / "recordings"),
           "CALLPILOT_CALL_START_TIMEOUT_S": "2", "CALLPILOT_PHONE_CALLS_PER_MINUTE": "2"}
    with voice_server(tmp, env) as running:
        yield running


def ws_url(server: VoiceServer, path: str) -> str:
    return server.url.replace("http://", "ws://") + path


def start_message(call_sid: str, token: str | None) -> str:
    parameters = {"caller": "+16175550142", **({"token": token} if token is not None else {})}
    return json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": "MZ" + "1" * 32,
                       "start": {"streamSid": "MZ" + "1" * 32, "callSid": call_sid, "customParameters": parameters}})


async def closed_with(url: str, messages: list[str], wait_s: float = 10.0) -> int | None:
    """Send the messages; the close code the server answered with (None: still open after `wait_s`)."""
    async with connect(url) as websocket:
        try:
            for message in messages:  # the server may close before it has read them all
                await websocket.send(message)
            while True:
                await asyncio.wait_for(websocket.recv(), wait_s)
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
        except TimeoutError:
            return None


def test_the_twilio_webhook_needs_twilios_signature_over_the_public_url(server: VoiceServer) -> None:
    form = {"CallSid": "CA" + "ab" * 16, "From": "+16175550142", "To": "+18005550100"}
    assert httpx.post(f"{server.url}/twilio/voice", data=form).status_code == 403
    forged = httpx.post(f"{server.url}/twilio/voice", data=form, headers={
        "X-Twilio-Signature": twilio_signature(TOKEN, f"{server.url}/twilio/voice", form),  # not our public URL
        "X-Forwarded-Host": server.url.removeprefix("http://")})
    assert forged.status_code == 403
    signed = httpx.post(f"{server.url}/twilio/voice", data=form, headers={
        "X-Twilio-Signature": twilio_signature(TOKEN, f"{PUBLIC}/twilio/voice", form)})
    assert signed.status_code == 200, signed.text
    assert 'url="wss://hotline.example.com/media/twilio"' in signed.text
    assert f'<Parameter name="token" value="{media_token(TOKEN, form["CallSid"])}"/>' in signed.text


def test_a_media_stream_without_its_token_or_with_a_forged_call_id_starts_nothing(server: VoiceServer,
                                                                                   tmp_path: Path) -> None:
    url = ws_url(server, "/media/twilio")
    sid = "CA" + "cd" * 16
    assert asyncio.run(closed_with(url, [start_message(sid, None)])) == 1008
    assert asyncio.run(closed_with(url, [start_message(sid, "not-the-token")])) == 1008
    evil = str(tmp_path / "evil")
    assert asyncio.run(closed_with(url, [start_message(evil, media_token(TOKEN, evil))])) == 1008
    assert not list(tmp_path.iterdir())  # no <path>.wav outside the recordings folder
    logged = {e.call_id for e in read_call_log(server.call_log)} if server.call_log.exists() else set()
    assert sid not in logged and evil not in logged


def test_a_connection_that_never_starts_its_call_is_closed(server: VoiceServer) -> None:
    url = ws_url(server, "/media/twilio")
    code = asyncio.run(closed_with(url, [json.dumps({"event": "connected", "protocol": "Call"})], wait_s=8.0))
    assert code is not None  # closed by the server after call_start_timeout_s (2 s), not left open


def test_connections_that_never_start_hold_no_line_and_a_real_call_still_gets_in(server: VoiceServer) -> None:
    """max_calls is 1: twenty bare connections (a scanner, a broken client) must not take the one line."""
    url = ws_url(server, "/media/twilio")
    sid = "CA" + "9a" * 16

    async def call_among_idle_connections() -> bool:
        idle = [await connect(url) for _ in range(20)]
        try:
            async with connect(url) as caller:
                await caller.send(start_message(sid, media_token(TOKEN, sid)))
                silence = base64.b64encode(b"\xff" * 160).decode()
                for n in range(200):  # the bot's greeting comes back: the call got the line
                    await caller.send(json.dumps({"event": "media", "sequenceNumber": str(n + 2),
                                                  "streamSid": "MZ" + "1" * 32,
                                                  "media": {"track": "inbound", "payload": silence}}))
                    with contextlib.suppress(TimeoutError):
                        if '"media"' in str(await asyncio.wait_for(caller.recv(), 0.02)):
                            return True
                return False
        finally:
            for websocket in idle:
                await websocket.close()

    assert asyncio.run(call_among_idle_connections())


def test_over_max_calls_twilio_hears_busy_and_the_refusal_is_counted(server: VoiceServer) -> None:
    url = ws_url(server, "/media/twilio")
    sid = "CA" + "ef" * 16

    async def two_calls() -> int | None:
        async with connect(url) as first:
            await first.send(start_message(sid, media_token(TOKEN, sid)))
            silence = base64.b64encode(b"\xff" * 160).decode()  # 20 ms of mu-law silence: the call's clock

            async def clock() -> None:
                for n in range(3000):
                    await first.send(json.dumps({"event": "media", "sequenceNumber": str(n + 2),
                                                 "streamSid": "MZ" + "1" * 32,
                                                 "media": {"track": "inbound", "payload": silence}}))
                    await asyncio.sleep(0.02)

            ticking = asyncio.create_task(clock())
            await asyncio.wait_for(first.recv(), 30)  # the call is up: the bot talks
            busy = httpx.post(f"{server.url}/twilio/voice", data={"CallSid": "CA" + "12" * 16}, headers={
                "X-Twilio-Signature": twilio_signature(TOKEN, f"{PUBLIC}/twilio/voice", {"CallSid": "CA" + "12" * 16})})
            assert '<Reject reason="busy"/>' in busy.text
            refused = await closed_with(url, [start_message("CA" + "34" * 16, media_token(TOKEN, "CA" + "34" * 16))])
            ticking.cancel()
            return refused

    assert asyncio.run(two_calls()) == 1013
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'callpilot_calls_rejected_total{reason="busy",transport="twilio"}' in metrics


def test_the_softphone_is_rate_limited_per_address(server: VoiceServer) -> None:
    url = ws_url(server, "/phone/ws")

    async def three() -> list[int | None]:
        return [await closed_with(url, [], wait_s=3.0) for _ in range(3)]

    codes = asyncio.run(three())
    assert codes[2] == 1008 and 1008 not in codes[:2], codes  # two a minute from one address


def test_a_caller_whose_connection_drops_mid_sentence_ends_the_call_cleanly(server: VoiceServer) -> None:
    """The TCP connection vanishes while the bot talks (no close frame): the call ends as `disconnected` and the
    server logs no unhandled exception (a soak under load showed sends and closes on a dead websocket escaping
    as 'Exception in ASGI application' and hanging calls up as 'handler failed')."""
    url = ws_url(server, "/media/twilio")
    sid = "CA" + "d0" * 16
    log = server.call_log.parent / "server.log"
    errors_before = log.read_text(errors="replace").count("Exception in ASGI application")

    async def drop_mid_greeting() -> None:
        caller = await connect(url)
        await caller.send(start_message(sid, media_token(TOKEN, sid)))
        silence = base64.b64encode(b"\xff" * 160).decode()
        for n in range(500):
            await caller.send(json.dumps({"event": "media", "sequenceNumber": str(n + 2), "streamSid": "MZ" + "1" * 32,
                                          "media": {"track": "inbound", "payload": silence}}))
            with contextlib.suppress(TimeoutError):
                if '"media"' in str(await asyncio.wait_for(caller.recv(), 0.02)):
                    break  # the bot is talking
        caller.transport.abort()  # gone, mid-sentence

    asyncio.run(drop_mid_greeting())
    for _ in range(100):
        ended = [e for e in read_call_log(server.call_log) if e.call_id == sid and e.kind.value == "ended"]
        if ended:
            break
        asyncio.run(asyncio.sleep(0.1))
    assert ended and ended[0].data["reason"] == "disconnected", ended
    assert log.read_text(errors="replace").count("Exception in ASGI application") == errors_before
    assert "handler failed" not in log.read_text(errors="replace")
