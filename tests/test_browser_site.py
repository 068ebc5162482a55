"""A newcomer's walk in a real browser (headless Debian Chromium), offline: from the landing page `/` to every
page it links, signing in where a page asks (an agent token and a supervisor API key made with the CLI, as
the README says). On every page: no console error, no request leaving this machine, content on the page
(no empty heading, no empty table), and no raw code (`caller_asked`, `longest_idle`) outside a details view.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from urllib.parse import urlsplit

from tests.live_processes import (
    CLI,
    ROOT,
    add_agent,
    add_supervisor_key,
    free_port,
    server_env,
    wait_healthy,
)
from tests.offline_browser import Browser


def test_a_newcomer_walks_from_the_landing_page_to_every_page(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = server_env(tmp_path)
    token = add_agent(env)
    key = add_supervisor_key(env)
    server = subprocess.Popen([*CLI, "run", "--port", str(port)], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_healthy(base, server, voice=False)
        with sync_playwright() as playwright:
            browser = Browser(playwright, base)
            page = browser.page
            try:
                page.goto(f"{base}/")
                landing = browser.look("/")
                for words in ("Softphone", "Agent desk", "Supervisor", "Dashboard", "API docs",
                              "callpilot agent add", "callpilot apikey create --role supervisor"):
                    assert words in landing, words
                links = page.eval_on_selector_all("ul.pages li > a", "links => links.map(a => a.getAttribute('href'))")
                assert links == ["/phone", "/agent", "/supervisor", "/dashboard", "/calls", "/docs"]
                icon = page.request.get(f"{base}/favicon.ico")
                assert icon.ok and icon.headers["content-type"].startswith("image/svg+xml")

                for link in links:
                    page.goto(f"{base}/")
                    with page.expect_navigation():
                        page.click(f"ul.pages a[href='{link}']")
                    assert urlsplit(page.url).path == link
                    assert page.locator("link[rel~=icon]").count() == 1, f"{link}: no favicon"
                    if link == "/phone":
                        expect(page.locator("#call")).to_be_visible()
                        assert "Press Call" in browser.look(link)
                    elif link == "/agent":
                        assert "Sign in" in browser.look(link)  # the sign-in form, before anyone typed
                        page.fill("#token", token)
                        page.click("#signin-button")
                        expect(page.locator("#desk")).to_be_visible(timeout=20_000)
                        page.click("#available")
                        expect(page.locator("#status")).to_have_text("available", timeout=10_000)
                        assert "Alice" in browser.look(link)
                    elif link in ("/supervisor", "/dashboard", "/calls"):
                        assert "Sign in" in browser.look(link)  # 200, no console error before a key
                        page.fill("input[name=key]", key)
                        with page.expect_navigation():
                            page.click("button[type=submit], form[action$='/login'] button")
                        if link == "/supervisor":
                            expect(page.locator("#queues")).to_contain_text("Orders", timeout=10_000)
                            expect(page.locator("#waiting")).to_contain_text("none")
                            text = browser.look(link)
                            assert "Alice" in text and "longest idle first" in text
                            assert "average handle time" in text  # what the README promises
                        elif link == "/calls":
                            text = browser.look(link)
                            assert "Call history" in text and "No call matches" in text
                        else:
                            text = browser.look(link)
                            assert "Answer rate" in text and "none" in text
                            assert "UTC" not in page.locator("time[data-local]").first.inner_text()
                    elif link == "/docs":
                        expect(page.locator(".swagger-ui .info .title")).to_contain_text("callpilot", timeout=20_000)
                        expect(page.locator(".swagger-ui")).to_contain_text("/api/v1/calls")
                        browser.look(link)
                assert page.request.get(f"{base}/redoc").status == 404  # ReDoc's bundle would fetch its logo from a CDN
            finally:
                browser.close()
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)
