"""The /trainer page in a real browser (Debian Chromium), without a training: two entities marked in one text by
selecting words, a cluster assigned with entities marked on each of its texts, a cluster turned into a new intent, refused
annotations shown with their reasons."""

from __future__ import annotations

import shutil
from pathlib import Path

from bot.nlu import NLUEngine
from callpilot.trainer.inbox import Sighting, store_sighting
from tests.live_processes import CHROMIUM_ARGS
from tests.trainer_fixtures import serve, workbench

CRYPTO = ["can i pay with bitcoin", "do you take crypto currency", "is paying in ethereum possible",
          "can i use dogecoin to pay", "do you accept crypto payments"]
ORDERS = ["where on earth is my order 48215", "any news on my order 41877 please", "any news on my order at all"]
SELECT = """(node, words) => {
    const start = node.textContent.indexOf(words), range = document.createRange();
    range.setStart(node.firstChild, start); range.setEnd(node.firstChild, start + words.length);
    const s = window.getSelection(); s.removeAllRanges(); s.addRange(range);
    node.dispatchEvent(new MouseEvent('mouseup', {bubbles: true}));
}"""


def test_entities_clusters_and_refusals_on_the_page(tmp_path: Path, nlu_engine: NLUEngine) -> None:
    from playwright.sync_api import expect, sync_playwright

    bench = workbench(tmp_path, nlu_engine)
    with bench.app.state.database.session() as session:
        for text in [*CRYPTO, *ORDERS, "please ship order 48215 to Boston instead", "the thing with the stuff"]:
            store_sighting(session, Sighting(text=text, reason="fallback", call_id="text-1", channel="rest",
                                             predicted_intent="nlu_fallback", confidence=0.2))
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is needed (.ci/run installs it)"
    with serve(bench.app) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{base}/trainer")
        page.fill("input[name=key]", bench.keys["trainer"])
        page.click("button.go")
        # Two entities in one text: select "48215", name it, keep the mark (+); select "Boston", name it; assign.
        row = page.locator("#inbox tbody tr", has_text="to Boston instead")
        expect(row).to_be_visible(timeout=20_000)
        row.locator("span.text").evaluate(SELECT, "48215")
        expect(row).to_contain_text("[48215]")
        row.locator("input[aria-label=entity]").fill("order_number")
        row.locator("button.add-mark").click()
        expect(row).to_contain_text("[48215 → order_number")
        row.locator("span.text").evaluate(SELECT, "Boston")
        row.locator("input[aria-label=entity]").fill("city")
        row.locator("select").select_option("change_delivery_address")
        row.locator("button", has_text="Assign").click()
        expect(page.locator("#status")).to_contain_text("assigned to change_delivery_address")
        expect(row).to_have_count(0)  # the inbox is drawn again (marks made before that would be gone)
        assert "- please ship order [48215](order_number) to [Boston](city) instead\n" in \
            (bench.settings.data_dir / "nlu/orders.yml").read_text()
        # A refusal: no intent chosen -> the reason, nothing written.
        other = page.locator("#inbox tbody tr", has_text="the thing with the stuff")
        other.locator("button", has_text="Assign").click()
        expect(page.locator("#status")).to_contain_text("intent")
        # A cluster assigned with each text's own entity: an entity the domain does not know is refused and
        # named, nothing written; corrected, each example has its own markup.
        orders = bench.settings.data_dir / "nlu/orders.yml"
        before = orders.read_text()
        cluster = page.locator("#clusters > li", has_text="(3 texts)")
        cluster.locator("summary").click()
        for text, words, entity in ((ORDERS[0], "48215", "order_number"), (ORDERS[1], "41877", "parcel")):
            member = cluster.locator("li", has_text=text)
            member.locator("span.text").evaluate(SELECT, words)
            expect(member).to_contain_text(f"[{words}]")
            member.locator("input[aria-label=entity]").fill(entity)
        cluster.locator("input[aria-label='intent for the cluster']").fill("check_order_status")
        cluster.locator("button", has_text="Assign all").click()
        expect(page.locator("#status")).to_contain_text(f"({ORDERS[1]!r}): unknown entity 'parcel'")
        assert orders.read_text() == before
        cluster.locator("li", has_text=ORDERS[1]).locator("input[aria-label=entity]").fill("order_number")
        cluster.locator("button", has_text="Assign all").click()
        expect(page.locator("#status")).to_contain_text("assigned to check_order_status (entities on 2 of 3 texts)")
        written = orders.read_text()
        for line in ("- where on earth is my order [48215](order_number)\n",
                     "- any news on my order [41877](order_number) please\n", "- any news on my order at all\n"):
            assert line in written
        expect(page.locator("#inbox tbody tr", has_text="any news on my order")).to_have_count(0)
        # A cluster becomes a new intent.
        cluster = page.locator("#clusters > li", has_text="(5 texts)")
        expect(cluster).to_contain_text("5 callers")
        cluster.locator("input[aria-label='intent for the cluster']").fill("pay_with_crypto")
        cluster.locator("button", has_text="Assign all").click()
        expect(page.locator("#status")).to_contain_text("assigned to pay_with_crypto")
        expect(page.locator("#intents")).to_contain_text("pay_with_crypto")
        browser.close()
    assert errors == []
    assert "- pay_with_crypto" in (bench.settings.data_dir / "domain.yml").read_text()
