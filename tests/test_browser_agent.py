"""End to end in a real browser: an agent signs in on /agent (headless Chromium, a fake microphone speaking an
espeak-ng sentence), a simulated caller on the Twilio websocket asks for a human, the offer pops up with the
transcript, the agent accepts and talks (and sees the key the caller presses), a supervisor signs in with an
API key and sees the live call, and the caller hears the agent's words while the bot stays silent.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np

from tests.live_processes import (
    CHROMIUM_ARGS,
    FRAME,
    RATE,
    add_agent,
    add_supervisor_key,
    free_port,
    logged_server,
    server_env,
    sign_in,
    transcribe_8k,
)
from voice_gateway.audio import FrameBuffer, rms
from voice_gateway.testing import TwilioCaller, espeak_wav, read_pcm

AGENT_WORDS = "Hello, this is Alice from customer service. How can I help you today?"


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
    with logged_server(tmp_path, port, env), sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, args=[*CHROMIUM_ARGS, f"--use-file-for-fake-audio-capture={mic}"])
        page = browser.new_page()
        sign_in(page, base, token)

        caller = TwilioCaller(f"ws://127.0.0.1:{port}/media/twilio", caller_speech, speak_at_s=6.0, limit_s=90.0)
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
    loud = [f for f in FrameBuffer(FRAME).push(agent_part) if rms(f) > 300]
    assert len(loud) * 20 > 2000, f"only {len(loud) * 20} ms of audible audio reached the caller from the agent"
    heard = transcribe_8k(agent_part)
    print(f"caller heard the agent for {len(loud) * 20} ms: {heard!r}")
    assert any(word in heard for word in ("alice", "customer", "service", "help you", "today")), heard


def test_a_newcomer_talks_to_themselves_from_phone_to_agent(tmp_path: Path) -> None:
    """The README's walk-through: /phone in one browser, /agent in another, nothing else running."""
    from playwright.sync_api import expect, sync_playwright

    from voice_gateway.audio import resample_pcm16

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
    with logged_server(tmp_path, port, env), sync_playwright() as playwright:
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
        try:  # "Waiting for an agent" says "agent" too: the phone must say it is talking to one
            expect(phone.locator("#status")).to_contain_text("Talking to", timeout=20_000)
            expect(desk.locator("#call")).to_be_visible(timeout=20_000)
        except AssertionError as exc:  # what each side showed: which of them missed the connection
            exc.add_note(f"phone: {phone.locator('#status').inner_text()!r}; desk: "
                         f"{desk.locator('#status').inner_text()!r}, {desk.locator('#message').inner_text()!r}")
            raise
        desk.wait_for_timeout(7_000)
        desk.click("#hang-up")
        expect(phone.locator("#status")).to_contain_text("ended", timeout=30_000)  # slow under a full test run
        agent_browser.close()
        caller_browser.close()
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
