"""The call history in a real browser (headless Debian Chromium): a supervisor signs in at /calls, finds a call
by the caller's number, opens it, reads its timeline and plays its recording; the play is in the audit log."""

from __future__ import annotations

import math
import struct
import subprocess
import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from callpilot.records.db import Database
from callpilot.records.models import AuditEntry
from callpilot.records.projection import RecordEvent
from callpilot.records.writer import store_events
from tests.live_processes import CHROMIUM_ARGS, CLI, ROOT, add_supervisor_key, free_port, server_env, wait_healthy
from tests.offline_browser import Browser

CALLER = "+16175550142"


def stereo_tone(path: Path, seconds: float = 1.5, rate: int = 8000) -> Path:
    frames = b"".join(struct.pack("<hh", int(8000 * math.sin(2 * math.pi * 440 * i / rate)), 0)
                      for i in range(int(seconds * rate)))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)
    return path


def seed(database: Database, recording: Path) -> None:
    start = datetime.now(UTC) - timedelta(hours=2)
    events = [
        RecordEvent("CAhist1", "started", start, {"transport": "twilio", "caller": CALLER}),
        RecordEvent("CAhist1", "turn", start + timedelta(seconds=5),
                    {"speaker": "caller", "text": "where is my order 48215", "intent": "check_order_status",
                     "intent_confidence": 0.97}),
        RecordEvent("CAhist1", "turn", start + timedelta(seconds=7),
                    {"speaker": "bot", "text": "Order 48215 is on its way."}),
        RecordEvent("CAhist1", "ended", start + timedelta(seconds=40), {"reason": "hangup", "recording": str(recording)}),
        RecordEvent("CAother", "started", start, {"transport": "twilio", "caller": "+13125550147"}),
        RecordEvent("CAother", "ended", start + timedelta(seconds=20), {"reason": "hangup"}),
    ]
    with database.session() as session:
        store_events(session, events, retention_days=90)


def test_a_supervisor_finds_a_call_by_number_and_plays_its_recording(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = server_env(tmp_path)
    key = add_supervisor_key(env)  # creates and upgrades the server's database
    database = Database(f"sqlite:///{tmp_path / 'var' / 'callpilot.db'}")
    seed(database, stereo_tone(tmp_path / "CAhist1.wav"))
    server = subprocess.Popen([*CLI, "run", "--port", str(port)], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_healthy(base, server, voice=False)
        with sync_playwright() as playwright:
            CHROMIUM_ARGS.append("--autoplay-policy=no-user-gesture-required")
            try:
                browser = Browser(playwright, base)
            finally:
                CHROMIUM_ARGS.pop()
            page = browser.page
            try:
                page.goto(f"{base}/calls")
                assert "Sign in" in browser.look("/calls")
                page.fill("input[name=key]", key)
                with page.expect_navigation():
                    page.click("form[action$='/login'] button")
                expect(page.locator("#total")).to_have_text("2")
                page.fill("input[name=caller]", "617-555-0142")  # typed the way people write it
                with page.expect_navigation():
                    page.click("#search button.go")
                expect(page.locator("#total")).to_have_text("1")
                assert "+16175550142" in browser.look("/calls?caller")
                with page.expect_navigation():
                    page.click("#calls tbody a")
                expect(page.locator("h1")).to_contain_text(CALLER)
                timeline = page.locator("#timeline").inner_text()
                assert "where is my order 48215" in timeline and "check order status (0.97)" in timeline
                played = page.evaluate("""async () => {
                    const audio = document.querySelector('#recording');
                    if (audio.readyState < 1) await new Promise(r => audio.addEventListener('loadedmetadata', r, {once: true}));
                    await audio.play();
                    await new Promise(r => setTimeout(r, 600));
                    return {duration: audio.duration, at: audio.currentTime, channels: null};
                }""")
                assert abs(played["duration"] - 1.5) < 0.1 and played["at"] > 0.2, played
                browser.look(page.url)
            finally:
                browser.close()
        with database.session() as session:
            actions = [(a.action, a.target) for a in session.scalars(select(AuditEntry))]
        assert ("recording.play", "CAhist1") in actions and ("call.view", "CAhist1") in actions
    finally:
        database.dispose()
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)
