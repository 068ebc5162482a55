"""The trainer's inbox: which turns land there (real dialogue engine and NLU), merging, clusters, actions."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.dialogue.factory import build_engine
from bot.nlu import NLUEngine
from callpilot.records.db import Database
from callpilot.records.models import InboxItem
from callpilot.trainer.data_edit import DataEditor, EditRefused
from callpilot.trainer.inbox import InboxRecorder, Sighting, corrects, store_sighting, text_key
from callpilot.trainer.inbox_view import annotate, dismiss, listing, mark_out_of_scope
from tests.records_fixtures import database, pg_schema_url  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    target = tmp_path / "nlu_data"
    shutil.copytree(ROOT / "nlu_data", target)
    return target


@pytest.fixture
def recorder(database: Database, nlu_engine: NLUEngine) -> Iterator[InboxRecorder]:  # noqa: F811
    recorder = InboxRecorder(database, threshold=0.5, call_id_of=lambda sender: f"call-of-{sender}")
    yield recorder
    recorder.close()


def sighting(text: str, reason: str = "fallback") -> Sighting:
    return Sighting(text=text, reason=reason, call_id="c1", channel="rest", predicted_intent="nlu_fallback",
                    confidence=0.2)


def test_fallback_handoff_and_corrected_turns_land_redacted(database: Database, nlu_engine: NLUEngine,  # noqa: F811
                                                            recorder: InboxRecorder) -> None:
    engine = build_engine(ROOT / "nlu_data", nlu_engine)
    engine.turn_observers.append(recorder)
    engine.handle_text("s1", "purple elephants dance on my roof, call me on 617-555-0142", channel="rest")
    engine.handle_text("s2", "where is my order", channel="rest")  # understood: not in the inbox
    engine.handle_text("s2", "I want to talk to a human", channel="rest")  # a handoff
    engine.handle_text("s3", "what are your opening hours", channel="rest")
    engine.handle_text("s3", "no, I mean the opening hours of the Boston store", channel="rest")  # corrected
    assert recorder.flush()
    with database.session() as session:
        items = {i.reason: i for i in session.scalars(select(InboxItem))}
    assert "where is my order" not in {i.text for i in items.values()}
    fallback = items["fallback"]
    assert "617-555-0142" not in fallback.text and "[phone]" in fallback.text
    assert fallback.call_id == "call-of-s1" and fallback.channel == "rest" and fallback.language == "en"
    assert fallback.predicted_intent in ("nlu_fallback", "out_of_scope") and fallback.count == 1
    assert items["handoff"].text == "I want to talk to a human"
    assert items["corrected"].text == "what are your opening hours" and items["corrected"].call_id == "call-of-s3"


def test_a_repeated_turn_marks_the_one_before_as_corrected() -> None:
    assert corrects("where is my parcel", "no, I mean where is my parcel")
    assert corrects("wheres my parcel", "where's my parcel?")
    assert not corrects("where is my order", "thanks, goodbye")
    assert not corrects("yes", "yes")


def test_near_identical_texts_merge_and_count(database: Database) -> None:  # noqa: F811
    with database.session() as session:
        first = store_sighting(session, sighting("Can I pay with bitcoin?"))
        store_sighting(session, sighting("can i pay with bitcoin"))
        store_sighting(session, sighting("can i pay with bitcoins"))
        other = store_sighting(session, sighting("do you sell garden furniture"))
    with database.session() as session:
        rows = {i.id: i for i in session.scalars(select(InboxItem))}
    assert rows[first.id].count == 3 and rows[other.id].count == 1 and len(rows) == 2
    assert text_key("Where's   my ORDER?") == "wheres my order"


def test_clusters_by_meaning_named_by_the_central_text(database: Database, nlu_engine: NLUEngine) -> None:  # noqa: F811
    texts = ["can i pay with bitcoin", "do you take crypto currency", "is paying in ethereum possible",
             "what is the weather in paris tomorrow"]
    with database.session() as session:
        for text in texts:
            store_sighting(session, sighting(text))
    with database.session() as session:
        view = listing(session, vectorise=nlu_engine.encoder.encode)
    assert {i["text"] for i in view["items"]} == set(texts)
    sizes = sorted(c["size"] for c in view["clusters"])
    assert sizes == [1, 3], view["clusters"]  # the crypto questions go together, the weather alone
    crypto = max(view["clusters"], key=lambda c: c["size"])
    assert "weather" not in crypto["name"] and crypto["name"] in texts


def test_assign_writes_the_example_and_closes_the_item_with_audit(database: Database,  # noqa: F811
                                                                  data_dir: Path) -> None:
    editor = DataEditor(data_dir)
    with database.session() as session:
        item = store_sighting(session, sighting("where the heck is my parcel 12345"))
        item_id = item.id
    with database.session() as session:
        annotate(session, editor, [item_id], "check_order_status", by="apikey:tr1",
                 entities=[{"start": 28, "end": 33, "entity": "order_number"}])
    assert "- where the heck is my parcel [12345](order_number)\n" in (data_dir / "nlu/orders.yml").read_text()
    with database.session() as session:
        done = session.get(InboxItem, item_id)
        assert done is not None
        assert done.status == "done" and done.resolved_by == "apikey:tr1" and done.resolved_at is not None
        assert done.resolution["intent"] == "check_order_status"
        assert listing(session)["items"] == []
        assert [i["id"] for i in listing(session, status="done")["items"]] == [item_id]


def test_bad_annotations_change_nothing(database: Database, data_dir: Path) -> None:  # noqa: F811
    editor = DataEditor(data_dir)
    before = {p: p.read_text() for p in data_dir.rglob("*.yml")}
    with database.session() as session:
        item_id = store_sighting(session, sighting("my kettle is on fire")).id
    bad = [
        ({"intent": "no_such_intent"}, "unknown intent"),
        ({"intent": "technical_fault", "entities": [{"start": 5, "end": 99, "entity": "product"}]}, "not inside"),
        ({"intent": "brand_new", "new_intent": True}, "at least 5"),  # one example is not an intent yet
    ]
    for kwargs, words in bad:
        with database.session() as session, pytest.raises(EditRefused, match=words):
            annotate(session, editor, [item_id], by="t", **kwargs)  # type: ignore[arg-type]
    assert {p: p.read_text() for p in data_dir.rglob("*.yml")} == before
    with database.session() as session:
        assert listing(session)["items"][0]["id"] == item_id  # still open


def test_out_of_scope_and_dismiss(database: Database, data_dir: Path) -> None:  # noqa: F811
    editor = DataEditor(data_dir)
    with database.session() as session:
        a = store_sighting(session, sighting("what is the meaning of life")).id
        b = store_sighting(session, sighting("asdf qwerty")).id
    with database.session() as session:
        mark_out_of_scope(session, editor, [a], by="t")
        dismiss(session, [b], by="t")
    assert "- what is the meaning of life\n" in (data_dir / "nlu/out_of_scope.yml").read_text()
    with database.session() as session:
        assert session.get(InboxItem, a).status == "out_of_scope"  # type: ignore[union-attr]
        assert session.get(InboxItem, b).status == "dismissed"  # type: ignore[union-attr]
        with pytest.raises(EditRefused, match="already resolved"):
            dismiss(session, [b], by="t")


def span(text: str, words: str, entity: str) -> dict[str, object]:
    start = text.index(words)
    return {"start": start, "end": start + len(words), "entity": entity}


ORDERS = ["where on earth is order 48215", "status of 41877 please", "could you look up my order for me"]


def cluster_of_orders(db: Database, data_dir: Path) -> tuple[DataEditor, dict[Path, str], list[int]]:
    """The editor, the data files as they were, and the ORDERS stored as three inbox items."""
    before = {p: p.read_text() for p in data_dir.rglob("*.yml")}
    with db.session() as session:
        ids = [store_sighting(session, sighting(text)).id for text in ORDERS]
    return DataEditor(data_dir), before, ids


def test_a_cluster_is_assigned_with_each_items_own_entities(database: Database,  # noqa: F811
                                                            data_dir: Path) -> None:
    editor, before, (a, b, c) = cluster_of_orders(database, data_dir)
    with database.session() as session:
        annotate(session, editor, [a, b, c], "check_order_status", by="apikey:tr1",
                 item_entities={a: [span(ORDERS[0], "48215", "order_number")],
                                b: [span(ORDERS[1], "41877", "order_number")]})
    added = ["    - where on earth is order [48215](order_number)\n", "    - status of [41877](order_number) please\n",
             "    - could you look up my order for me\n"]
    orders = data_dir / "nlu/orders.yml"
    after = orders.read_text()
    assert "".join(added) in after  # each example with its own markup, in the order given
    for line in added:
        after = after.replace(line, "", 1)
    assert after == before[orders]  # comments, order and format of everything else kept
    assert {p: p.read_text() for p in data_dir.rglob("*.yml") if p != orders} == \
        {p: text for p, text in before.items() if p != orders}
    with database.session() as session:
        audit = {i: session.get(InboxItem, i) for i in (a, b, c)}
        assert {i: (row.status, row.resolution["entities"]) for i, row in audit.items() if row} == {
            a: ("done", [span(ORDERS[0], "48215", "order_number")]),
            b: ("done", [span(ORDERS[1], "41877", "order_number")]),
            c: ("done", []),
        }


def test_a_bad_span_on_one_item_of_a_cluster_changes_nothing(database: Database,  # noqa: F811
                                                             data_dir: Path) -> None:
    editor, before, (a, b, c) = cluster_of_orders(database, data_dir)
    good = {a: [span(ORDERS[0], "48215", "order_number")]}
    bad = [
        ({**good, b: [{"start": 10, "end": 99, "entity": "order_number"}]},
         rf"inbox item {b} \('status of 41877 please'\): entity 'order_number' span 10-99 is not inside"),
        ({**good, c: [span(ORDERS[2], "order", "parcel_colour")]},
         rf"inbox item {c} \('could you look up my order for me'\): unknown entity 'parcel_colour'"),
        ({**good, 424242: [span(ORDERS[1], "41877", "order_number")]}, "inbox item 424242, which is not among"),
    ]
    for item_entities, words in bad:
        with database.session() as session, pytest.raises(EditRefused, match=words) as refused:
            annotate(session, editor, [a, b, c], "check_order_status", by="t", item_entities=item_entities)
        assert f"inbox item {a}" not in str(refused.value)  # the good item is not blamed
    with database.session() as session, pytest.raises(EditRefused, match="give each item its own entities"):
        annotate(session, editor, [a, b], "check_order_status", by="t",
                 entities=[span(ORDERS[0], "48215", "order_number")])
    assert {p: p.read_text() for p in data_dir.rglob("*.yml")} == before
    with database.session() as session:
        assert sorted(i["id"] for i in listing(session)["items"]) == sorted([a, b, c])  # all still open


def test_a_callers_last_turn_is_forgotten_once_their_call_is_long_over(database: Database) -> None:  # noqa: F811
    """The recorder keeps each sender's last turn only to tell a correction: 30 minutes on, the same number
    calling again starts afresh (nothing marked corrected), and senders gone quiet are no longer held."""
    now = [datetime(2026, 12, 5, 9, 0, tzinfo=UTC)]
    recorder = InboxRecorder(database, threshold=0.5, clock=lambda: now[0])
    try:
        recorder.heard("+15550001", "voice", "what are your opening hours", "opening_hours", 0.95)
        now[0] += timedelta(minutes=31)
        recorder.heard("+15550002", "voice", "where is my order", "order_status", 0.95)
        assert recorder.senders_followed == 1  # the first caller's turn went with their call
        recorder.heard("+15550001", "voice", "no, I mean the opening hours of the Boston store", "opening_hours",
                       0.95)
        recorder.heard("+15550002", "voice", "no, I mean the order I placed on Monday", "order_status", 0.95)
        assert recorder.flush()
        with database.session() as session:
            corrected = [i.text for i in session.scalars(select(InboxItem).where(InboxItem.reason == "corrected"))]
        assert corrected == ["where is my order"]  # within the call: a correction; across calls: none
        assert recorder.senders_followed == 2
    finally:
        recorder.close()
