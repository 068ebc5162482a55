"""A headless Debian Chromium page for the tests that walk the site: offline (requests leaving this machine are
refused and noted), console errors kept, and a check of what a page shows."""

from __future__ import annotations

import shutil
from typing import Any
from urllib.parse import urlsplit

from tests.live_processes import CHROMIUM_ARGS

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
