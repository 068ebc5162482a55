"""The trainer's whole loop in a real browser (Debian Chromium): a REST caller is not understood, the trainer
signs in at /trainer, finds the utterance, assigns it, trains, reads the comparison and activates; the same
text then gets the new intent over the REST channel, and concurrent REST conversations never see an error or a
gap over 2 s meanwhile. Then: a restart loads the activated model, and a roll-back brings the old one back."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import httpx

from bot.nlu import NLUEngine
from bot.nlu.storage import active_id
from callpilot.app import create_app
from tests.live_processes import CHROMIUM_ARGS
from tests.trainer_fixtures import serve, workbench

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


def test_a_trainer_fixes_a_fallback_in_the_browser_while_calls_go_on(tmp_path: Path, nlu_engine: NLUEngine) -> None:
    from playwright.sync_api import expect, sync_playwright

    bench = workbench(tmp_path, nlu_engine)
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is needed (.ci/run installs it)"
    with serve(bench.app) as base, httpx.Client(base_url=base, timeout=30) as client:
        assert client.post("/webhooks/rest/webhook", json={"sender": "caller-1", "message": TEXT}).status_code == 200
        bench.app.state.trainer.recorder.flush()
        with sync_playwright() as playwright, Conversations(base) as talk:
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
