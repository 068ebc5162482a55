"""End to end in a real browser: an agent signs in on /agent (headless Chromium, a fake microphone speaking an
espeak-ng sentence), a simulated caller on the Twilio websocket asks for a human, the offer pops up with the
transcript, the agent accepts and talks (and sees the key the caller presses), a supervisor signs in with an
API key and sees the live call, and the caller hears the agent's words while the bot stays silent.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from tests.voice_helpers import stop_process
from voice_gateway.events import AudioOut
from voice_gateway.simulated_caller import dial_twilio

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "callpilot"]
RATE = 8000
FRAME = RATE // 50 * 2
AGENT_WORDS = "Hello, this is Alice from customer service. How can I help you today?"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--use-fake-ui-for-media-stream",
                 "--use-fake-device-for-media-stream"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def espeak_wav(path: Path, text: str, rate: int, *, pad_s: float) -> Path:
    """Synthesised speech as 16-bit mono PCM at `rate`, with `pad_s` of silence after it."""
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-s", "150", "-w", str(raw), text], check=True)
    subprocess.run(["sox", str(raw), "-r", str(rate), "-c", "1", "-b", "16", str(path), "pad", "0", str(pad_s)],
                   check=True)
    return path


def read_pcm(path: Path) -> bytes:
    with wave.open(str(path)) as reader:
        return reader.readframes(reader.getnframes())


class Caller(threading.Thread):
    """A Twilio caller in real time on its own event loop: silence, the request, then silence until hung up."""

    def __init__(self, url: str, speech: bytes, *, speak_at_s: float, limit_s: float) -> None:
        super().__init__(daemon=True)
        self.url, self.speech, self.speak_at_s, self.limit_s = url, speech, speak_at_s, limit_s
        self.heard = bytearray()  # one frame of what the caller heard per frame it sent (silence if nothing)
        self.closed_by_server = False
        self.error: BaseException | None = None
        self.keys: list[str] = []  # keys to press (as Twilio DTMF events), from the test's thread
        self.lines: list[bytes] = []  # speech to say now (8 kHz PCM), from the test's thread

    def run(self) -> None:
        try:
            asyncio.run(self._call())
        except BaseException as exc:  # reported by the test
            self.error = exc

    async def _call(self) -> None:
        lead = bytes(int(self.speak_at_s * RATE) * 2)
        audio = lead + self.speech + bytes(int(self.limit_s * RATE) * 2)
        loop = asyncio.get_running_loop()
        async with dial_twilio(self.url) as line:
            started = loop.time()
            for index in range(len(audio) // FRAME):
                while self.keys:
                    line.send_dtmf(self.keys.pop(0))
                if self.lines:  # said now, in place of the script's silence
                    at = index * FRAME
                    said = self.lines.pop(0)
                    audio = audio[:at] + said + audio[at + len(said):]
                line.send_audio(audio[index * FRAME : (index + 1) * FRAME])
                await line.flush()
                got = b"".join(e.pcm for e in line.events() if isinstance(e, AudioOut))
                self.heard += got.ljust(FRAME, b"\x00") if len(got) <= FRAME else got
                if line.closed:
                    self.closed_by_server = True
                    return
                await asyncio.sleep(max(0.0, started + (index + 1) * 0.02 - loop.time()))
            await line.hang_up()


def transcribe_8k(pcm: bytes) -> str:
    from voice_gateway.asr import AsrFinal, AsrSettings, TurnListener, load_engine
    from voice_gateway.vad import SileroVad, VoiceActivityDetector

    listener = TurnListener(VoiceActivityDetector.create(SileroVad(), RATE), load_engine(AsrSettings()).stream(RATE))
    results = listener.accept(pcm + bytes(RATE * 2)) + listener.flush()
    return " ".join(r.text for r in results if isinstance(r, AsrFinal)).lower()


def wait_healthy(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        try:
            ready = httpx.get(f"{base}/health", timeout=2).status_code == 200
            if ready and httpx.get(f"{base}/health/voice", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert server.poll() is None, server.stdout.read().decode() if server.stdout else ""
        time.sleep(0.5)
    raise AssertionError("the server did not become healthy")


def server_env(tmp_path: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "CALLPILOT_AUDIOSOCKET_PORT": "0",
        "CALLPILOT_CALL_LOG": str(tmp_path / "calls.jsonl"),
        "CALLPILOT_RECORDINGS_DIR": str(tmp_path / "recordings"),
        "CALLPILOT_STATE_DIR": str(tmp_path / "var"),
        "CALLPILOT_HANDOFF": json.dumps({"agents_file": str(tmp_path / "agents.json")}),
    }
    env.pop("CALLPILOT_REDIS_URL", None)  # the server's own in-process Redis
    return env


def add_agent(env: dict[str, str]) -> str:
    """`callpilot agent add` as a newcomer runs it; returns the token it prints."""
    added = subprocess.run([*CLI, "agent", "add", "Alice", "--skills", "orders,returns,tech,billing,general"],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert added.returncode == 0, added.stderr
    lines = added.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("cpa_"), added.stdout  # the token alone, like an API key
    return lines[0]


def add_supervisor_key(env: dict[str, str]) -> str:
    """`callpilot apikey create --role supervisor`, as the README says; returns the key it prints."""
    created = subprocess.run([*CLI, "apikey", "create", "--role", "supervisor", "--name", "floor manager"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert created.returncode == 0, created.stderr
    return created.stdout.strip().splitlines()[-1]


def sign_in(page: Any, base: str, token: str) -> None:
    from playwright.sync_api import expect

    page.goto(f"{base}/agent")
    page.fill("#token", token)
    page.click("#signin-button")
    expect(page.locator("#desk")).to_be_visible(timeout=20_000)
    page.click("#available")
    expect(page.locator("#status")).to_have_text("available", timeout=10_000)


def test_agent_talks_to_a_caller_through_the_desktop(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is needed (.ci/run installs it)"
    mic = espeak_wav(tmp_path / "agent.wav", AGENT_WORDS, 16000, pad_s=0.8)
    caller_speech = read_pcm(espeak_wav(tmp_path / "caller.wav", "I want to talk to a human agent please", RATE,
                                        pad_s=0.0))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = server_env(tmp_path)
    token = add_agent(env)
    supervisor_key = add_supervisor_key(env)
    server = subprocess.Popen([*CLI, "run", "--port", str(port)], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_healthy(base, server)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium, args=[*CHROMIUM_ARGS, f"--use-file-for-fake-audio-capture={mic}"])
            page = browser.new_page()
            sign_in(page, base, token)

            caller = Caller(f"ws://127.0.0.1:{port}/media/twilio", caller_speech, speak_at_s=6.0, limit_s=90.0)
            caller.start()
            expect(page.locator("#offer")).to_be_visible(timeout=60_000)
            assert "human agent" in page.locator("#transcript").inner_text().lower()
            page.click("#accept")
            expect(page.locator("#call")).to_be_visible(timeout=10_000)
            caller.keys.append("5")  # the caller presses a key: the agent sees it, the bot does not answer
            expect(page.locator("#caller-keys")).to_contain_text("caller pressed 5", timeout=10_000)
            supervisor = browser.new_page()  # meanwhile, the supervisor signs in and sees the live call
            supervisor.goto(f"{base}/supervisor")
            expect(supervisor.locator("#signin-error")).to_be_empty()
            supervisor.fill("#key", token)  # an agent's token is not a supervisor's key
            supervisor.click("button[type=submit]")
            expect(supervisor.locator("#signin-error")).to_contain_text("unknown or revoked", timeout=10_000)
            supervisor.fill("#key", supervisor_key)
            supervisor.click("button[type=submit]")
            expect(supervisor.locator("#agents")).to_contain_text("on call", timeout=10_000)
            expect(supervisor.locator("#live")).to_contain_text("Alice", timeout=10_000)  # the name, not the id
            supervisor.close()
            page.wait_for_timeout(7_000)  # the agent talks (its fake microphone loops the sentence)
            page.click("#hang-up")
            expect(page.locator("#wrapup")).to_be_visible(timeout=10_000)
            caller.join(timeout=20)
            page.select_option("#disposition", "resolved")
            page.fill("#notes", "talked to the caller from the browser test")
            page.click("#wrapup-form button")
            expect(page.locator("#message")).to_have_text("Wrap-up saved.", timeout=10_000)
            browser.close()
    finally:
        stop_process(server)
    assert caller.error is None, caller.error
    assert caller.closed_by_server, "the agent hung up, so the call should have ended"

    events = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    joined = next(i for i, e in enumerate(events) if e["event"] == "handoff" and e.get("stage") == "agent_joined")
    after = events[joined + 1 :]
    bot_turns = [e for e in after if e["event"] == "turn" and e.get("leg") != "agent"]
    assert not bot_turns, "the bot spoke or listened while the agent had the call"
    said = [e for e in after if e["event"] == "turn" and e.get("leg") == "agent"]  # the desk's live transcript
    assert any(e["speaker"] == "agent" and "help" in e["text"].lower() for e in said), said
    joined_ms = int(events[joined]["call_ms"])
    start = (joined_ms // 20 + 25) * FRAME  # half a second after the agent joined
    agent_part = bytes(caller.heard[start:])
    loud = [f for f in (agent_part[i : i + FRAME] for i in range(0, len(agent_part) - FRAME + 1, FRAME))
            if np.sqrt(np.mean(np.frombuffer(f, "<i2").astype(np.float64) ** 2)) > 300]
    assert len(loud) * 20 > 2000, f"only {len(loud) * 20} ms of audible audio reached the caller from the agent"
    heard = transcribe_8k(agent_part)
    print(f"caller heard the agent for {len(loud) * 20} ms: {heard!r}")
    assert any(word in heard for word in ("alice", "customer", "service", "help you", "today")), heard


def test_a_newcomer_talks_to_themselves_from_phone_to_agent(tmp_path: Path) -> None:
    """The README's walk-through: /phone in one browser, /agent in another, nothing else running."""
    from playwright.sync_api import expect, sync_playwright

    from voice_gateway.tts.formats import resample_pcm16

    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is needed (.ci/run installs it)"
    agent_mic = espeak_wav(tmp_path / "agent.wav", AGENT_WORDS, 16000, pad_s=0.8)
    # The caller waits for the greeting, asks once, then stays quiet (the fake microphone loops the file).
    caller_mic = espeak_wav(tmp_path / "caller.wav", "I want to talk to a human agent please", 16000, pad_s=90)
    silence = tmp_path / "lead.wav"
    subprocess.run(["sox", "-n", "-r", "16000", "-c", "1", "-b", "16", str(silence), "trim", "0", "7"], check=True)
    subprocess.run(["sox", str(silence), str(caller_mic), str(tmp_path / "caller-line.wav")], check=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**server_env(tmp_path), "CALLPILOT_RECORD_CALLS": "true"}
    token = add_agent(env)
    server = subprocess.Popen([*CLI, "run", "--port", str(port)], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_healthy(base, server)
        with sync_playwright() as playwright:
            launch = playwright.chromium.launch
            agent_browser = launch(executable_path=chromium,
                                   args=[*CHROMIUM_ARGS, f"--use-file-for-fake-audio-capture={agent_mic}"])
            caller_browser = launch(executable_path=chromium, args=[
                *CHROMIUM_ARGS, f"--use-file-for-fake-audio-capture={tmp_path / 'caller-line.wav'}"])
            desk = agent_browser.new_page()
            sign_in(desk, base, token)
            phone = caller_browser.new_page()
            phone.goto(f"{base}/phone")
            phone.click("#call")
            expect(desk.locator("#offer")).to_be_visible(timeout=90_000)
            desk.click("#accept")
            expect(phone.locator("#status")).to_contain_text("agent", timeout=10_000)
            desk.wait_for_timeout(7_000)
            desk.click("#hang-up")
            expect(phone.locator("#status")).to_contain_text("ended", timeout=30_000)  # slow under a full test run
            agent_browser.close()
            caller_browser.close()
    finally:
        stop_process(server)
    events = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    joined = next(e for e in events if e["event"] == "handoff" and e.get("stage") == "agent_joined")
    ended = next(e for e in events if e["event"] == "ended" and e["call_id"] == joined["call_id"])
    with wave.open(str(ended["recording"])) as recording:
        rate = recording.getframerate()
        frames = np.frombuffer(recording.readframes(recording.getnframes()), "<i2").reshape(-1, 2)
    agent_side = frames[int((joined["call_ms"] + 500) * rate / 1000) :, 1].astype("<i2").tobytes()
    heard = transcribe_8k(resample_pcm16(agent_side, rate, RATE))
    print(f"the /phone caller heard: {heard!r}")
    assert any(word in heard for word in ("alice", "customer", "service", "help you", "today")), heard
