"""The softphone page in a real browser: headless Chromium with a fake microphone playing a WAV calls the bot.

Chromium's `--use-file-for-fake-audio-capture` feeds the WAV (a question after the greeting's length of
silence, looped) to getUserMedia; the page's AudioWorklet captures it, the websocket carries it to a real
`callpilot run`, and the bot's answer comes back, is played by the worklet and shown in the transcript.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.voice_helpers import VoiceServer, silence, speech, voice_server, write_wav

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")

RATE = 16000
TIMEOUT_MS = 60_000


def launch_args(wav: Path) -> list[str]:
    return [
        "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}", "--autoplay-policy=no-user-gesture-required",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VoiceServer]:
    with voice_server(tmp_path_factory.mktemp("browser")) as running:
        yield running


def open_phone(server: VoiceServer, wav: Path) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=launch_args(wav))
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"{server.url}/phone")
            yield page
            assert errors == [], errors
        finally:
            browser.close()


@pytest.fixture()
def question_page(server: VoiceServer, tmp_path: Path) -> Iterator[object]:
    audio = silence(7.0, RATE) + speech("what are your opening hours", RATE) + silence(14.0, RATE)
    yield from open_phone(server, write_wav(tmp_path / "question.wav", audio, RATE))


@pytest.fixture()
def quiet_page(server: VoiceServer, tmp_path: Path) -> Iterator[object]:
    yield from open_phone(server, write_wav(tmp_path / "quiet.wav", silence(20.0, RATE), RATE))


def transcript(page: object, speaker: str) -> str:
    from playwright.sync_api import Page

    assert isinstance(page, Page)
    return " ".join(page.locator(f"#transcript li.{speaker}").all_inner_texts()).lower()


def test_the_bot_answers_the_question_spoken_into_the_microphone(question_page: object) -> None:
    from playwright.sync_api import Page, expect

    page = question_page
    assert isinstance(page, Page)
    page.click("#call")
    expect(page.locator("#hangup")).to_be_enabled(timeout=TIMEOUT_MS)
    caller = page.locator("#transcript li.caller:not(.partial)", has_text="opening hours")
    expect(caller.first).to_be_visible(timeout=TIMEOUT_MS)
    answer = page.locator("#transcript li.bot", has_text="Monday to Saturday")
    expect(answer.first).to_be_visible(timeout=TIMEOUT_MS)
    assert "brightline" in transcript(page, "bot")  # the greeting came first
    # The answer was played, not just shown: the worklet played several seconds of bot audio.
    page.wait_for_function("window.phoneStats.playedSamples > 16000 * 6", timeout=TIMEOUT_MS)
    stats = page.evaluate("window.phoneStats")
    assert stats["sentFrames"] > 50 * 8  # the microphone's audio went out in 20 ms frames
    page.click("#hangup")
    expect(page.locator("#status")).to_have_text("You hung up.")
    expect(page.locator("#call")).to_be_enabled()


def test_keypad_keys_reach_the_ivr(quiet_page: object) -> None:
    from playwright.sync_api import Page, expect

    page = quiet_page
    assert isinstance(page, Page)
    page.click("#call")
    expect(page.locator("#hangup")).to_be_enabled(timeout=TIMEOUT_MS)
    expect(page.locator("#transcript li.bot").first).to_be_visible(timeout=TIMEOUT_MS)  # the greeting
    page.click("#keypad button:text-is('5')")
    menu = page.locator("#transcript li.bot", has_text="For our opening hours, press 1")
    expect(menu.first).to_be_visible(timeout=TIMEOUT_MS)
    page.click("#keypad button:text-is('1')")
    expect(page.locator("#transcript li.bot", has_text="Monday to Saturday").first).to_be_visible(timeout=TIMEOUT_MS)
    page.click("#hangup")
