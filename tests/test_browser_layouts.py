"""The desks on a laptop and a phone-sized screen, by keyboard, through a dropped connection (headless Chromium
against the whole app in uvicorn, its in-process Redis; no speech models needed):

- /agent and /supervisor fit 1280x800 and 390x844 without sideways scrolling, and no console error;
- the agent signs in and goes available with the keyboard alone (Tab and Enter);
- the desk's websocket drops: the page says so, connects again and the agent is available again (the server
  had set them offline when the connection went).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from bot.nlu import NLUEngine
from callpilot.app import create_app
from callpilot.records.apikeys import create_key
from callpilot.settings import Settings
from handoff import agents_path
from handoff.directory import AgentDirectory
from handoff.redis_conn import process_fake_server
from tests.live_processes import CHROMIUM_ARGS

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "docs" / "screenshots"
SIZES = {"laptop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


class Site:
    def __init__(self, base: str, app: Any, token: str, key: str) -> None:
        self.base, self.app, self.token, self.key = base, app, token, key


@pytest.fixture
def site(tmp_path: Path, nlu_engine: NLUEngine) -> Iterator[Site]:
    process_fake_server.cache_clear()  # an in-process Redis of its own
    config = Settings.load(None, {}, data_dir=ROOT / "nlu_data", state_dir=tmp_path / "var",
                           database_url=f"sqlite:///{tmp_path / 'rec.db'}", audiosocket_port=0,
                           call_log=tmp_path / "calls.jsonl")
    _, token = AgentDirectory(agents_path(config)).add("Ann", {"orders": 3, "general": 2})
    app = create_app(config, engine=nlu_engine)
    app.state.voice.start_loading = lambda: None  # pages and desks only: no speech models
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    app.state.database.upgrade()
    with app.state.database.session() as session:
        key = create_key(session, "supervisor", "floor")
    port = server.servers[0].sockets[0].getsockname()[1]
    yield Site(f"http://127.0.0.1:{port}", app, token, key)
    server.should_exit = True
    thread.join(30)


def fits(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))


def shot(page: Any, name: str) -> None:
    if os.environ.get("CALLPILOT_SCREENSHOTS"):
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_the_desks_fit_laptops_and_phones_work_by_keyboard_and_survive_a_dropped_connection(site: Site) -> None:
    from playwright.sync_api import expect, sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is needed (.ci/run installs it)"
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        for size, viewport in SIZES.items():
            context = browser.new_context(viewport=viewport, permissions=["microphone"])
            desk = context.new_page()
            desk.on("console", lambda m, at=size: errors.append(f"{at} desk: {m.text}") if m.type == "error" else None)
            desk.goto(f"{site.base}/agent")
            desk.locator("#token").focus()
            desk.keyboard.type(site.token)
            desk.keyboard.press("Enter")  # the form's submit, by keyboard
            expect(desk.locator("#desk")).to_be_visible(timeout=20_000)
            for _ in range(15):  # Tab through the page to the Available button
                if desk.evaluate("document.activeElement && document.activeElement.id") == "available":
                    break
                desk.keyboard.press("Tab")
            assert desk.evaluate("document.activeElement.id") == "available", "Available is not reachable by Tab"
            desk.keyboard.press("Enter")
            expect(desk.locator("#status")).to_have_text("available", timeout=10_000)
            assert fits(desk), f"/agent scrolls sideways at {viewport}"
            shot(desk, f"agent-desk-{size}")

            floor = context.new_page()
            floor.on("console", lambda m, at=size: errors.append(f"{at} floor: {m.text}") if m.type == "error" else None)
            floor.goto(f"{site.base}/supervisor")
            floor.fill("#key", site.key)
            floor.keyboard.press("Enter")
            expect(floor.locator("#agents")).to_contain_text("available", timeout=10_000)
            expect(floor.locator("#wallboard .tile")).to_have_count(5, timeout=10_000)
            assert fits(floor), f"/supervisor scrolls sideways at {viewport}"
            shot(floor, f"supervisor-{size}")

            # The connection drops (a proxy restarts, Wi-Fi comes and goes): the desk comes back by itself.
            desk.evaluate("socket.close()")
            expect(desk.locator("#link")).to_contain_text("connection lost", timeout=5_000)
            expect(desk.locator("#link")).to_be_empty(timeout=15_000)
            expect(desk.locator("#status")).to_have_text("available", timeout=10_000)
            expect(floor.locator("#agents")).to_contain_text("available", timeout=10_000)  # the server agrees
            context.close()
        browser.close()
    assert not errors, errors
