"""End to end over Asterisk's AudioSocket: a real `callpilot run`, dialled like Asterisk does, greets, answers
a spoken question, takes keys, knows the caller's number from the dialplan's UUID; `callpilot call --realtime`
really plays the caller's audio in real time."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from callpilot.settings import Settings
from callpilot.voice import place_call
from tests.asterisk_dialplan import audiosocket_uuid
from tests.voice_helpers import CLI, ROOT, VoiceServer, silence, speech, voice_server, write_wav
from voice_gateway.call_log import CallEvent, LifecycleKind, read_call_log
from voice_gateway.simulated_caller import CallerScript, dial_audiosocket, run_caller
from voice_gateway.transports import audiosocket_caller

RATE = 8000
OPENING_HOURS = "monday to saturday"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VoiceServer]:
    with voice_server(tmp_path_factory.mktemp("audiosocket")) as running:
        yield running


@pytest.fixture(scope="module")
def question_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The greeting plays for about 5 s, then the caller asks."""
    audio = silence(6.0, RATE) + speech("what are your opening hours", RATE)
    return write_wav(tmp_path_factory.mktemp("wav") / "question.wav", audio, RATE)


def calls_since(server: VoiceServer, seen: set[str]) -> dict[str, list[CallEvent]]:
    """The call log's events of the calls not in `seen`, by call."""
    calls: dict[str, list[CallEvent]] = {}
    for event in read_call_log(server.call_log):
        if event.call_id not in seen:
            calls.setdefault(event.call_id, []).append(event)
    return calls


def logged_calls(server: VoiceServer) -> set[str]:
    return {e.call_id for e in read_call_log(server.call_log)} if server.call_log.exists() else set()


def wait_for_end(server: VoiceServer, seen: set[str]) -> list[CallEvent]:
    """The one new call's events once it has ended (the server logs `ended` just after the hang-up)."""
    for _ in range(100):
        calls = calls_since(server, seen)
        if len(calls) == 1 and next(iter(calls.values()))[-1].kind is LifecycleKind.ENDED:
            return next(iter(calls.values()))
        time.sleep(0.1)
    raise AssertionError(f"no single ended call in the log: {calls_since(server, seen)}")


def said(events: list[CallEvent], speaker: str, key: str = "text") -> list[str]:
    return [str(e.data[key]).lower() for e in events if e.kind is LifecycleKind.TURN and e.data["speaker"] == speaker]


def settings_for(server: VoiceServer) -> Settings:
    return Settings.load(None, {}, host="127.0.0.1", port=server.port, audiosocket_port=server.audiosocket_port)


def test_the_bot_greets_and_answers_a_spoken_question(server: VoiceServer, question_wav: Path, tmp_path: Path) -> None:
    seen = logged_calls(server)
    report = place_call(settings_for(server), question_wav, transport="audiosocket", realtime=False,
                        out=tmp_path / "bot.wav", transcribe=False)
    events = wait_for_end(server, seen)
    assert events[0].kind is LifecycleKind.STARTED and events[0].data["transport"] == "audiosocket"
    assert "opening hours" in " ".join(said(events, "caller")), said(events, "caller")
    bot = said(events, "bot", "planned")
    assert "brightline" in bot[0], bot  # the greeting
    assert any(OPENING_HOURS in line for line in bot[1:]), bot
    # In the bot's audio: the greeting before the question, the answer after it.
    question_at_ms = 6000
    spans = report.bot_spans_ms()
    assert spans[0][0] < question_at_ms and spans[-1][0] > question_at_ms, spans
    assert (tmp_path / "bot.wav").stat().st_size > 44 + 2 * RATE  # more than a second of bot audio saved


def test_keys_over_audiosocket_walk_the_menu(server: VoiceServer, tmp_path: Path) -> None:
    seen = logged_calls(server)
    quiet = write_wav(tmp_path / "quiet.wav", silence(8.0, RATE), RATE)
    report = place_call(settings_for(server), quiet, transport="audiosocket", dtmf=["5@1.0", "1@4.0"],
                        realtime=False, out=tmp_path / "bot.wav", transcribe=False)
    events = wait_for_end(server, seen)
    keys = [(e.data["keys"], e.data["source"]) for e in events if e.kind is LifecycleKind.DTMF]
    assert keys == [("51", "transport")]  # one run: the bot's prompts between the keys do not end it
    bot = said(events, "bot", "planned")
    assert any("for our opening hours, press 1" in line for line in bot), bot  # "5": the stores menu
    assert any(OPENING_HOURS in line for line in bot), bot  # "1": the opening hours
    assert [digit for digit, _ in report.keys_ms] == ["5", "1"]
    # --fast: the caller's 8 s and more went by quicker than real time.
    assert report.sent_ms >= 8000 and report.wall_s < report.sent_ms / 1000


def test_callpilot_call_realtime_plays_the_caller_in_real_time(
    server: VoiceServer, question_wav: Path, tmp_path: Path
) -> None:
    seen = logged_calls(server)
    started = time.monotonic()
    done = subprocess.run(
        [*CLI, "call", "--transport", "audiosocket", "--wav", str(question_wav), "--realtime",
         "--out", str(tmp_path / "bot.wav")],
        cwd=ROOT, env=server.env, capture_output=True, text=True, timeout=300,
    )
    took_s = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    events = wait_for_end(server, seen)
    # The whole question was played at 20 ms per 20 ms frame: the call cannot have taken less than the WAV lasts.
    wav_s = 6.0 + len(speech("what are your opening hours", RATE)) / 2 / RATE
    assert took_s >= wav_s
    ended = events[-1]
    assert ended.call_ms >= wav_s * 1000  # the server's clock (caller audio received) agrees
    printed = done.stdout.lower()
    caller_lines = [line for line in printed.splitlines() if "caller:" in line]
    heard_lines = [line for line in printed.splitlines() if "heard:" in line]  # ASR of the bot's audio
    assert any("opening hours" in line for line in caller_lines), done.stdout
    assert heard_lines and float(heard_lines[0].split("-")[0]) < 6.0, done.stdout  # greeting first, at its time
    # the bot's own words, from the server's call log (the CLI shares the server's CALLPILOT_CALL_LOG)
    assert any(line.strip().startswith("bot: ") and "brightline" in line for line in printed.splitlines()), printed
    assert "the caller hung up" in printed


def test_the_caller_id_from_the_documented_dialplan_reaches_the_call_and_the_handoff(server: VoiceServer) -> None:
    seen = logged_calls(server)
    # The UUID a real Asterisk sends for a call from +16175550142 with the README's dialplan.
    call_uuid = uuid.UUID(audiosocket_uuid(audiosocket_caller.__doc__ or "", "+16175550142", "1733212345.77"))

    async def call() -> None:
        async with dial_audiosocket("127.0.0.1", server.audiosocket_port, call_uuid=call_uuid) as phone:
            script = CallerScript(silence(6.0, RATE), keys=(("0", 1.0),), tail_s=4.0, realtime=False)
            await run_caller(phone, script)  # "0": an agent, please

    asyncio.run(call())
    events = wait_for_end(server, seen)
    # The call log file is redacted as it is written: the number is there, as "[phone]".
    assert events[0].call_id == str(call_uuid) and events[0].data["caller"] == "[phone]"
    handoffs = [e for e in events if e.kind is LifecycleKind.HANDOFF and "caller_number" in e.data]
    # The handoff (screen pop, callback number) knows who is calling.
    assert handoffs and handoffs[0].data["caller_number"] == "[phone]", events
    # The call records (the operator's view) hold the number itself.
    done = subprocess.run([*CLI, "apikey", "create", "--role", "admin", "--name", "ops"], cwd=ROOT, env=server.env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    key = done.stdout.splitlines()[0].strip()
    for _ in range(50):
        reply = httpx.get(f"{server.url}/api/v1/calls/{call_uuid}", headers={"Authorization": f"Bearer {key}"})
        if reply.status_code == 200 and reply.json().get("ended_at"):
            break
        time.sleep(0.2)
    assert reply.status_code == 200, reply.text
    assert reply.json()["caller_number"] == "+16175550142", reply.json()
