"""The trainer's whole loop in a real browser (Debian Chromium): a REST caller is not understood, the trainer
signs in at /trainer, finds the utterance, assigns it, trains, reads the comparison and activates; the same
text then gets the new intent over the REST channel, and concurrent REST conversations never see an error or a gap
over 2 s meanwhile, nor a phone call (a real-time Twilio caller asking a question whenever the bot is quiet) an error
or a question left unanswered for 2 s. Then: a restart loads the activated model, and a roll-back brings the old one
back."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from bot.nlu import NLUEngine
from bot.nlu.storage import active_id
from callpilot.app import create_app
from tests.live_processes import CHROMIUM_ARGS
from tests.trainer_fixtures import serve, workbench
from voice_gateway.testing import FRAME, TwilioCaller, espeak, phone_audio, rms

TEXT = "do you do gift wrapping"  # the demo model: payment_methods at 0.34, under the inbox threshold


class Conversations:
    """REST callers talking all along: every error and the slowest turn are kept."""

    def __init__(self, base: str, callers: int = 3) -> None:
        self.base, self.errors, self.worst = base, [], 0.0
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._talk, args=(n,)) for n in range(callers)]

    def _talk(self, n: int) -> None:
        with httpx.Client(base_url=self.base, timeout=30) as client:
            turn = 0
            while not self.stop.is_set():
                turn += 1
                started = time.perf_counter()
                message = ("where is my order", "hello", "what are your opening hours")[turn % 3]
                reply = client.post("/webhooks/rest/webhook", json={"sender": f"load-{n}", "message": message})
                self.worst = max(self.worst, time.perf_counter() - started)
                if reply.status_code != 200 or not reply.json():
                    self.errors.append(f"{reply.status_code} {reply.text[:100]}")
                time.sleep(0.2)

    def __enter__(self) -> Conversations:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()


class PhoneCaller:
    """One phone call all along: whenever the bot has been quiet for 1 s the caller asks the next question, and
    the time from the end of the question to the bot's first audio is kept (audio time: one frame heard per frame
    sent). A turn not answered within 10 s counts as a 10 s gap."""

    QUESTIONS = ("what are your opening hours", "where is my order", "do you have a store in boston",
                 "how do i return an item")

    def __init__(self, base: str) -> None:
        self.line = TwilioCaller(base.replace("http://", "ws://") + "/media/twilio", b"", speak_at_s=0.0,
                                 limit_s=1800.0)
        self.speech = [phone_audio(espeak(q)) for q in self.QUESTIONS]
        self.gaps_ms: list[int] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._talk, daemon=True)

    def _loud(self, frame: int) -> bool:
        pcm = bytes(self.line.heard[frame * FRAME : (frame + 1) * FRAME])
        return len(pcm) == FRAME and rms(pcm) > 300

    def _frames(self) -> int:
        return len(self.line.heard) // FRAME

    @staticmethod
    def _voiced_frames(speech: bytes) -> int:
        """Frames up to the end of the voice (the synthesiser's trailing silence is not the caller's turn)."""
        frames = [speech[i : i + FRAME] for i in range(0, len(speech) - FRAME + 1, FRAME)]
        loud = [n for n, f in enumerate(frames) if rms(f) > 300]
        return (loud[-1] + 1) if loud else len(frames)

    def _quiet(self) -> bool:
        now = self._frames()
        return now > 50 and not any(self._loud(f) for f in range(now - 50, now))

    def _first_loud(self, since: int) -> int | None:
        return next((f for f in range(since, self._frames()) if self._loud(f)), None)

    def _until(self, done: Callable[[], bool], limit_s: float) -> bool:
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline and not self.stop.is_set():
            if done():
                return True
            time.sleep(0.05)
        return False

    def _talk(self) -> None:
        asked = 0
        while not self.stop.is_set() and self.line.is_alive():
            if not self._until(self._quiet, 30.0):
                continue
            speech = self.speech[asked % len(self.speech)]
            asked += 1
            end = self._frames() + self._voiced_frames(speech)  # said from the next frame sent on
            self.line.lines.append(speech)
            if self._until(lambda since=end: self._first_loud(since) is not None, 10.0 + len(speech) / 16000):
                self.gaps_ms.append(((self._first_loud(end) or end) - end) * 20)
            elif not self.stop.is_set():
                self.gaps_ms.append(10_000)

    def __enter__(self) -> PhoneCaller:
        self.line.start()
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(15)
        self.line.done.set()
        self.line.join(15)


def test_a_trainer_fixes_a_fallback_in_the_browser_while_calls_go_on(tmp_path: Path, nlu_engine: NLUEngine) -> None:
    from playwright.sync_api import expect, sync_playwright

    bench = workbench(tmp_path, nlu_engine, voice=True)
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is needed (.ci/run installs it)"
    with serve(bench.app) as base, httpx.Client(base_url=base, timeout=30) as client:
        assert client.post("/webhooks/rest/webhook", json={"sender": "caller-1", "message": TEXT}).status_code == 200
        bench.app.state.trainer.recorder.flush()
        deadline = time.monotonic() + 240
        while client.get("/health/voice").status_code != 200:
            assert time.monotonic() < deadline, client.get("/health/voice").json()
            time.sleep(0.5)
        with sync_playwright() as playwright, Conversations(base) as talk, PhoneCaller(base) as phone:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{base}/trainer")
            page.fill("input[name=key]", bench.keys["agent"])
            page.click("button.go")
            expect(page.locator("p.error")).to_contain_text("may not train")
            page.fill("input[name=key]", bench.keys["trainer"])
            page.click("button.go")
            row = page.locator("#inbox tbody tr", has_text=TEXT)
            expect(row).to_be_visible(timeout=20_000)
            expect(row).to_contain_text("low_confidence")
            row.locator("select").select_option("product_info")
            row.locator("button", has_text="Assign").click()
            expect(page.locator("#status")).to_contain_text("assigned to product_info")
            expect(page.locator("#inbox tbody tr", has_text=TEXT)).to_have_count(0)
            page.click("#train")
            comparison = page.locator("#comparison")
            expect(comparison).to_be_visible(timeout=900_000)
            expect(comparison).to_contain_text("Held-out accuracy: new")
            expect(comparison).to_contain_text("Conversation tests:")
            expect(comparison).to_contain_text(f"“{TEXT}” → product_info")
            if page.locator("#override").count():
                page.check("#override")  # the page shows which conversation tests fail; the trainer accepts
            page.click("#activate")
            expect(page.locator("#status")).to_contain_text("is live", timeout=60_000)
            time.sleep(1.0)  # the conversations go on, on the new model
            browser.close()
        assert errors == []
        assert talk.errors == [] and talk.worst < 2.0, (talk.errors[:3], talk.worst)
        # The phone call: never dropped, every question answered within 2 s, also during training and the swap
        # (0.8-1.2 s over three runs on 2 cores: the end of a turn by the caller's words, issue 13).
        assert phone.line.error is None and not phone.line.closed_by_server, phone.line.error
        server_gaps = [line for line in bench.settings.call_log.read_text().splitlines() if '"turn_gaps_ms"' in line]
        assert len(phone.gaps_ms) >= 3 and max(phone.gaps_ms) < 2000, (phone.gaps_ms, server_gaps[-1:])
        new_id = client.get("/health").json()["model_id"]
        assert new_id != nlu_engine.model_id and active_id(bench.settings.models_dir) == new_id
        assert client.post("/model/parse", json={"text": TEXT}).json()["intent"]["name"] == "product_info"
        reply = client.post("/webhooks/rest/webhook", json={"sender": "caller-2", "message": TEXT})
        assert reply.status_code == 200 and reply.json()
        # A restart loads the activated model as it is (no retraining).
        restarted = create_app(bench.settings)
        restarted.state.holder.load(bench.settings)
        assert restarted.state.holder.engine.model_id == new_id
        # Roll back: the old model is live again, in this process and after a restart.
        back = client.post(f"/api/v1/trainer/models/{nlu_engine.model_id}/rollback", headers=bench.auth())
        assert back.status_code == 200 and client.get("/health").json()["model_id"] == nlu_engine.model_id
        assert active_id(bench.settings.models_dir) == nlu_engine.model_id
