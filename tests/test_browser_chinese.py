"""The pages in Chinese, in a real browser (headless Debian Chromium): a browser set to Chinese gets the agent
desk, the supervisor page, the dashboard and the call history in Chinese; the switch in the top bar changes
the language, and the choice sticks; an English browser keeps English."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.live_processes import (
    CHROMIUM_ARGS,
    CLI,
    ROOT,
    add_agent,
    add_supervisor_key,
    free_port,
    server_env,
    wait_healthy,
)


def test_a_chinese_browser_gets_the_pages_in_chinese_and_can_switch(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = server_env(tmp_path)
    token = add_agent(env)
    key = add_supervisor_key(env)
    server = subprocess.Popen([*CLI, "run", "--port", str(port)], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_healthy(base, server, voice=False)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
            try:
                chinese = browser.new_context(locale="zh-CN")
                page = chinese.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(f"{base}/agent")
                expect(page.locator("h1")).to_have_text("坐席工作台")
                expect(page.locator("#signin-button")).to_have_text("登录")
                assert page.get_attribute("#token", "placeholder") == "坐席令牌"
                assert page.evaluate("document.documentElement.lang") == "zh-CN"
                page.fill("#token", token)
                page.click("#signin-button")
                expect(page.locator("#desk")).to_be_visible(timeout=20_000)
                expect(page.locator("#available")).to_have_text("空闲")
                expect(page.locator("#hand-back")).to_have_text("交回机器人")
                for path, heading in (("/supervisor", "现场"), ("/dashboard", "仪表盘"), ("/calls", "通话历史")):
                    page.goto(f"{base}{path}")
                    if page.locator("input[name=key]").count():
                        expect(page.locator("form button").first).to_have_text("登录")
                        page.fill("input[name=key]", key)
                        with page.expect_navigation():
                            page.click("form button")
                    expect(page.locator("h1")).to_contain_text(heading, timeout=10_000)
                page.goto(f"{base}/dashboard")
                expect(page.locator("body")).to_contain_text("接通率")
                # The switch: English, remembered for the next pages.
                expect(page.locator("#lang-switch")).to_have_text("English")
                page.click("#lang-switch")
                expect(page.locator("h1")).to_contain_text("Dashboard")
                expect(page.locator("#lang-switch")).to_have_text("中文")
                page.goto(f"{base}/agent")
                expect(page.locator("h1")).to_have_text("Agent desk")
                assert not errors, errors

                english = browser.new_context(locale="en-US").new_page()
                english.goto(f"{base}/agent")
                expect(english.locator("h1")).to_have_text("Agent desk")
                expect(english.locator("#lang-switch")).to_have_text("中文")
                english.click("#lang-switch")
                expect(english.locator("h1")).to_have_text("坐席工作台")
            finally:
                browser.close()
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)
