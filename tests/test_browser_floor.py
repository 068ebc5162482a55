"""The desks people work at all day, in headless Chromium against a real `callpilot run`:

1. The agent's desk: a call rings (ring tone, browser notification), the agent answers with Alt+A, sees the
   live transcript of both sides, hangs up with Alt+X, must pick a disposition, and finds the call in "My
   calls" with its transcript.
2. The supervisor's floor: the wallboard shows the queue; the supervisor changes the queue to ring all agents
   and the next call rings both (Alice in Chromium, Bob on a scripted desk); Bob answers; the supervisor listens
   in, whispers (Bob hears it, the caller does not: checked by transcription) and barges in (now the caller hears
   it too).
3. The call is found by number in /calls and its recording plays.
Screenshots of each page go to docs/screenshots/ (when CALLPILOT_SCREENSHOTS is set: `make screenshots`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import connect

from tests.live_processes import (
    CHROMIUM_ARGS,
    CLI,
    FRAME,
    RATE,
    ROOT,
    add_agent,
    add_supervisor_key,
    free_port,
    logged_server,
    server_env,
    transcribe_8k,
)
from voice_gateway.audio import FrameBuffer, resample_pcm16, rms
from voice_gateway.testing import TwilioCaller, espeak_wav, read_pcm

WHISPER_WORDS = "Offer the customer a full refund for the broken kettle."
SHOTS = ROOT / "docs" / "screenshots"


class ScriptedDesk(threading.Thread):
    """Bob's desk without a browser: signs in, becomes available, accepts the first offer, keeps what he hears
    (16 kHz PCM) and sends silence, until `stop` is set; then hangs up and wraps up."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__(daemon=True)
        self.url, self.token = url, token
        self.heard = bytearray()
        self.connected = threading.Event()
        self.stop = threading.Event()
        self.messages: list[dict[str, Any]] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._desk()
        except BaseException as exc:  # reported by the test
            self.error = exc

    def _desk(self) -> None:
        with connect(self.url) as ws:
            ws.send(json.dumps({"type": "hello", "token": self.token}))
            ws.send(json.dumps({"type": "status", "status": "available"}))
            last_ping = time.monotonic()
            while not self.stop.is_set():
                try:
                    message = ws.recv(timeout=0.2)
                except TimeoutError:
                    message = None
                if isinstance(message, bytes):
                    self.heard += message
                    ws.send(bytes(len(message)))  # Bob says nothing
                elif message is not None:
                    data = json.loads(message)
                    self.messages.append(data)
                    if data["type"] == "offer":
                        ws.send(json.dumps({"type": "accept", "offer_id": data["offer_id"]}))
                    elif data["type"] == "connected":
                        self.connected.set()
                if time.monotonic() - last_ping > 5:
                    ws.send(json.dumps({"type": "ping"}))
                    last_ping = time.monotonic()
            ws.send(json.dumps({"type": "hang_up"}))
            ws.send(json.dumps({"type": "wrap_up", "disposition": "resolved", "notes": "refund offered"}))
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                message = ws.recv(timeout=10)
                if isinstance(message, str) and json.loads(message)["type"] == "wrapped_up":
                    return


def shot(page: Any, name: str) -> None:
    if os.environ.get("CALLPILOT_SCREENSHOTS"):
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def loud_ms(pcm: bytes, frame: int) -> int:
    return 20 * sum(rms(f) > 300 for f in FrameBuffer(frame).push(pcm))


def test_the_agent_desk_and_the_supervisor_floor_in_a_browser(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is needed (.ci/run installs it)"
    alice_mic = espeak_wav(tmp_path / "alice.wav", "Hello, this is Alice. How can I help you today?", 16000, pad_s=0.8)
    supervisor_mic = espeak_wav(tmp_path / "supervisor.wav", WHISPER_WORDS, 16000, pad_s=0.6)
    ask = read_pcm(espeak_wav(tmp_path / "ask.wav", "I want to talk to a human agent please", RATE, pad_s=0.0))
    kettle = read_pcm(espeak_wav(tmp_path / "kettle.wav", "My new kettle arrived broken yesterday", RATE, pad_s=0.0))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**server_env(tmp_path), "CALLPILOT_RECORD_CALLS": "true"}
    alice = add_agent(env)
    added = subprocess.run([*CLI, "agent", "add", "Bob", "--skills", "orders,returns,tech,billing,general"],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    bob_token = added.stdout.strip()
    key = add_supervisor_key(env)
    admin = subprocess.run([*CLI, "apikey", "create", "--role", "admin", "--name", "ops"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=60).stdout.strip().splitlines()[-1]
    errors: list[str] = []
    with logged_server(tmp_path, port, env):
        with sync_playwright() as playwright:
            launch = playwright.chromium.launch
            agent_browser = launch(executable_path=chromium,
                                   args=[*CHROMIUM_ARGS, f"--use-file-for-fake-audio-capture={alice_mic}"])
            floor_browser = launch(executable_path=chromium,
                                   args=[*CHROMIUM_ARGS, f"--use-file-for-fake-audio-capture={supervisor_mic}"])
            desk_context = agent_browser.new_context(permissions=["notifications", "microphone"],
                                                     viewport={"width": 1280, "height": 800})
            desk = desk_context.new_page()
            desk.on("console", lambda m: errors.append(f"desk: {m.text}") if m.type == "error" else None)
            desk.goto(f"{base}/agent")
            desk.fill("#token", alice)
            desk.click("#signin-button")
            expect(desk.locator("#desk")).to_be_visible(timeout=20_000)
            desk.click("#available")
            expect(desk.locator("#status")).to_have_text("available", timeout=10_000)
            expect(desk.locator("#status-time")).to_contain_text("for 0:0", timeout=5_000)
            expect(desk.locator("#disposition option")).to_have_count(7)  # "Disposition…" + the 6 configured

            # 1. A call rings at Alice's desk (only she is signed in): ring, notification, Alt+A, Alt+X, wrap-up.
            first = TwilioCaller(f"ws://127.0.0.1:{port}/media/twilio", ask, speak_at_s=6.0, limit_s=60.0)
            first.start()
            expect(desk.locator("#offer")).to_be_visible(timeout=60_000)
            assert desk.evaluate("window.rings") == 1
            assert desk.evaluate("window.lastNotification && window.lastNotification.title") == "Incoming call"
            shot(desk, "agent-desk-ringing")
            desk.keyboard.press("Alt+a")
            expect(desk.locator("#call")).to_be_visible(timeout=10_000)
            assert desk.evaluate("window.lastNotification") is None  # the notification went with the ring
            desk.keyboard.press("Alt+m")
            expect(desk.locator("#mute")).to_have_text("Unmute")
            desk.keyboard.press("Alt+m")
            desk.fill("#notes", "wanted a person about the kettle")
            first.lines.append(kettle)  # the caller answers Alice: both sides appear in the live transcript
            said = {side: desk.locator(f"#live-lines li.{side}", has_text=re.compile(words, re.I)).first
                    for side, words in (("caller", "kettle|broken"), ("agent", "alice|help"))}
            expect(said["caller"]).to_be_visible(timeout=30_000)
            expect(said["agent"]).to_be_visible(timeout=30_000)
            shot(desk, "agent-desk-on-call")
            desk.keyboard.press("Alt+x")
            expect(desk.locator("#wrapup")).to_be_visible(timeout=10_000)
            desk.click("#wrapup-form button")  # no disposition picked: the browser refuses the form
            expect(desk.locator("#wrapup")).to_be_visible()
            desk.select_option("#disposition", "follow_up")
            desk.click("#wrapup-form button")
            expect(desk.locator("#message")).to_have_text("Wrap-up saved.", timeout=10_000)
            first.join(timeout=20)
            expect(desk.locator("#my-calls tbody tr")).to_have_count(1, timeout=10_000)
            expect(desk.locator("#my-calls")).to_contain_text("follow up", timeout=10_000)
            desk.locator("#my-calls tbody a").first.click()
            expect(desk.locator("#my-call-lines")).to_contain_text("human agent", timeout=10_000)
            expect(desk.locator("#my-numbers")).to_contain_text("Calls today")
            shot(desk, "agent-desk-my-calls")

            # 2. The supervisor: wallboard, the queue rings everyone, listen / whisper / barge.
            floor_context = floor_browser.new_context(permissions=["microphone"], viewport={"width": 1280, "height": 800})
            floor = floor_context.new_page()
            floor.on("console", lambda m: errors.append(f"floor: {m.text}") if m.type == "error" else None)
            floor.goto(f"{base}/supervisor")
            floor.fill("#key", key)
            floor.click("button[type=submit]")
            expect(floor.locator("#wallboard .tile[data-queue=general]")).to_contain_text("Waiting: 0", timeout=10_000)
            floor.click("button[name=change-general]")  # where "a human agent" goes
            expect(floor.locator("#queue-form")).to_be_visible()
            floor.select_option("#q-strategy", "ringall")
            floor.click("#queue-form button[type=submit]")
            expect(floor.locator("#q-message")).to_contain_text("Saved", timeout=10_000)
            expect(floor.locator("#queues")).to_contain_text("all free agents at once", timeout=10_000)

            bob = ScriptedDesk(f"ws://127.0.0.1:{port}/agent/ws", bob_token)
            bob.start()
            time.sleep(1.0)
            second = TwilioCaller(f"ws://127.0.0.1:{port}/media/twilio", ask, speak_at_s=6.0, limit_s=90.0)
            second.start()
            assert bob.connected.wait(60), bob.messages  # Bob answered...
            offered_bob = next(m for m in bob.messages if m["type"] == "offer")
            assert desk.evaluate("window.rings") == 2  # ...and Alice's desk rang for the same call (ringall)
            expect(desk.locator("#message")).to_contain_text("another agent took it", timeout=10_000)
            call_id = offered_bob["context"]["call_id"]

            floor.click(f"button[name='listen-{call_id}']")
            expect(floor.locator("#monitor-mode")).to_have_text("listening", timeout=10_000)
            floor.wait_for_function("window.monitorFrames > 50", timeout=10_000)  # the call's audio plays here
            shot(floor, "supervisor-floor")
            floor.click("#m-whisper")
            expect(floor.locator("#monitor-mode")).to_have_text("whispering to the agent", timeout=10_000)
            bob_from, caller_from = len(bob.heard), len(second.heard)
            floor.wait_for_timeout(7_000)
            bob_whisper, caller_whisper = bytes(bob.heard[bob_from:]), bytes(second.heard[caller_from:])
            floor.click("#m-barge")
            expect(floor.locator("#monitor-mode")).to_have_text("in the call", timeout=10_000)
            caller_from = len(second.heard)
            floor.wait_for_timeout(7_000)
            caller_barge = bytes(second.heard[caller_from:])
            floor.click("#m-stop")
            floor.evaluate("document.body.classList.add('wall')")
            shot(floor, "supervisor-wallboard")
            bob.stop.set()
            bob.join(timeout=20)
            second.join(timeout=30)

            # 3. The call history: found by number, its recording plays.
            history = floor_context.new_page()
            history.goto(f"{base}/calls")
            history.fill("input[name=key]", key)
            history.click("form button.go")
            expect(history.locator("#search")).to_be_visible(timeout=10_000)
            history.goto(f"{base}/calls?caller=%2B15550100000")
            expect(history.locator("#calls tbody a").first).to_be_visible(timeout=10_000)
            shot(history, "call-history")
            history.locator("#calls tbody a").first.click()
            history.wait_for_function("document.querySelector('#recording').readyState >= 1", timeout=10_000)
            assert history.evaluate("document.querySelector('#recording').duration") > 5
            history.evaluate("document.querySelector('#recording').play()")
            history.wait_for_function("document.querySelector('#recording').currentTime > 0.3", timeout=10_000)
            shot(history, "call-page")
            agent_browser.close()
            floor_browser.close()
        audit = httpx.get(f"{base}/api/v1/audit", headers={"Authorization": f"Bearer {admin}"}).json()
    assert not errors, errors
    for thread in (first, second, bob):
        assert thread.error is None, thread.error
    heard_by_bob = transcribe_8k(resample_pcm16(bob_whisper, 16000, RATE))
    print(f"Bob heard the whisper: {heard_by_bob!r}; the caller, {loud_ms(caller_whisper, FRAME)} ms loud")
    assert "refund" in heard_by_bob or "kettle" in heard_by_bob, heard_by_bob
    heard_by_caller = transcribe_8k(caller_whisper)
    assert "refund" not in heard_by_caller and "kettle" not in heard_by_caller, heard_by_caller
    barged = transcribe_8k(caller_barge)
    print(f"the caller heard the barge: {barged!r}")
    assert "refund" in barged or "kettle" in barged, barged
    actions = {(row["action"], row["target"]) for row in audit}
    assert {("queue.change", "general"), ("call.listen", call_id), ("call.whisper", call_id),
            ("call.barge", call_id)} <= actions, actions
