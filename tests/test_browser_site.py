"""A newcomer's walk in a real browser (headless Debian Chromium), offline: from the landing page `/` to every
page it links, signing in where a page asks (an agent token and a supervisor API key made with the CLI, as
the README says). On every page: no console error, no request leaving this machine, content on the page
(no empty heading, no empty table), and no raw code (`caller_asked`, `longest_idle`) outside a details view.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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

# What a page shows: headings with words, tables with a row, and (outside <details>, <code>, form fields) no
# snake_case codes.
PAGE_CHECK = """() => {
  const visible = (el) => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length);
  const problems = [];
  for (const h of document.querySelectorAll("h1, h2, h3")) {
    if (visible(h) && !h.textContent.trim()) problems.push(`empty heading ${h.outerHTML}`);
  }
  for (const table of document.querySelectorAll("table")) {
    if (visible(table) && !table.querySelector("tbody tr, tr td")) problems.push(`empty table ${table.id || ""}`);
  }
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (!parent || parent.closest("details, code, pre, script, style, textarea, select, .swagger-ui, redoc, [role=main]")) continue;
    if (!visible(parent)) continue;
    const code = /\\b[a-z]+_[a-z_]+\\b/.exec(node.textContent);
    if (code) problems.push(`raw code ${JSON.stringify(code[0])} in ${JSON.stringify(node.textContent.trim())}`);
  }
  return { text: document.body.innerText.trim(), problems };
}"""


class Browser:
    """One Chromium page that records console errors, failed requests and requests to other hosts."""

    def __init__(self, playwright: Any, base: str) -> None:
        chromium = shutil.which("chromium")
        assert chromium, "Debian's chromium is needed (.ci/run installs it)"
        self.browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        self.context = self.browser.new_context()
        self.base = base
        self.errors: list[str] = []
        self.outside: list[str] = []
        self.context.route("**/*", self._only_this_machine)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: self.errors.append(f"{self.page.url}: {m.text}") if m.type == "error"
                     else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"{self.page.url}: {e}"))

    def _only_this_machine(self, route: Any) -> None:
        """Offline: anything not on this server is refused (and noted)."""
        if urlsplit(route.request.url).netloc == urlsplit(self.base).netloc:
            route.continue_()
        else:
            self.outside.append(route.request.url)
            route.abort()

    def look(self, path: str, *, min_chars: int = 40) -> str:
        """The page's text after checking it: content, no empty heading or table, no raw code, no error."""
        result = self.page.evaluate(PAGE_CHECK)
        assert len(result["text"]) >= min_chars, f"{path}: nearly empty page: {result['text']!r}"
        assert not result["problems"], f"{path}: {result['problems']}"
        assert not self.errors, f"{path}: console errors: {self.errors}"
        assert not self.outside, f"{path}: requests leaving the machine: {self.outside}"
        return str(result["text"])

    def close(self) -> None:
        self.browser.close()


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
