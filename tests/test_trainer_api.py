"""The workbench over HTTP: REST conversations fill the inbox, annotations edit the data (or are refused with
nothing changed), a training crashing half way changes nothing."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from fastapi.testclient import TestClient

from bot.nlu import NLUEngine
from bot.nlu.storage import active_id
from tests.trainer_fixtures import workbench


def snapshot(folder: Path) -> dict[str, str]:
    return {p.as_posix(): p.read_text() for p in sorted(folder.rglob("*.yml"))}


def test_rest_turns_fill_the_inbox_and_annotations_edit_the_data(tmp_path: Path, nlu_engine: NLUEngine) -> None:
    bench = workbench(tmp_path, nlu_engine)
    with TestClient(bench.app) as client:
        for sender in ("a", "b"):
            assert client.post("/webhooks/rest/webhook", json={"sender": sender, "message": "do you do gift wrapping"}
                               ).status_code == 200
        client.post("/webhooks/rest/webhook", json={"sender": "c", "message": "hello there"})
        bench.app.state.trainer.recorder.flush()
        inbox = client.get("/api/v1/trainer/inbox", headers=bench.auth()).json()
        [item] = [i for i in inbox["items"] if i["text"] == "do you do gift wrapping"]
        assert item["count"] == 2 and item["reason"] == "low_confidence" and item["call_id"].startswith("text-")
        assert item["predicted_intent"] and 0 <= item["confidence"] < 0.5
        assert any(item["id"] in c["item_ids"] for c in inbox["clusters"])
        assert all(i["text"] != "hello there" for i in inbox["items"])
        version = client.get("/api/v1/trainer/data", headers=bench.auth()).json()["version"]
        before = snapshot(bench.settings.data_dir)
        # Bad input: a clear error, nothing written, the item still open.
        refused = [
            client.post(f"/api/v1/trainer/inbox/{item['id']}/annotate", headers=bench.auth(),
                        json={"intent": "no_such_intent"}),
            client.post(f"/api/v1/trainer/inbox/{item['id']}/annotate", headers=bench.auth(),
                        json={"intent": "product_info", "entities": [{"start": 3, "end": 80, "entity": "product"}]}),
            client.post("/api/v1/trainer/data/intents/greet/examples", headers=bench.auth(), json={"text": ""}),
            client.post("/api/v1/trainer/data/intents/greet/examples", headers=bench.auth(), json={"text": "x" * 10_000}),
        ]
        assert [r.status_code for r in refused] == [422, 422, 422, 422]
        assert "unknown intent" in str(refused[0].json()["detail"])
        assert client.post("/api/v1/trainer/inbox/999999/annotate", headers=bench.auth(),
                           json={"intent": "greet"}).status_code == 404
        assert snapshot(bench.settings.data_dir) == before
        done = client.post(f"/api/v1/trainer/inbox/{item['id']}/annotate", headers=bench.auth(),
                           json={"intent": "product_info", "version": version})
        assert done.status_code == 200, done.text
        assert "- do you do gift wrapping\n" in (bench.settings.data_dir / "nlu/store.yml").read_text()
        # A second save on the version the first trainer saw is a conflict, not an overwrite.
        stale = client.post("/api/v1/trainer/data/intents/greet/examples", headers=bench.auth("admin"),
                            json={"text": "top of the morning", "version": version})
        assert stale.status_code == 409
        assert all(i["id"] != item["id"] for i in client.get("/api/v1/trainer/inbox", headers=bench.auth()).json()["items"])
        audited = client.get("/api/v1/trainer/inbox?status=done", headers=bench.auth()).json()["items"]
        assert audited[0]["resolved_by"].startswith("apikey:") and audited[0]["resolution"]["intent"] == "product_info"


def test_a_training_that_crashes_half_way_changes_nothing(tmp_path: Path, nlu_engine: NLUEngine) -> None:
    bench = workbench(tmp_path, nlu_engine)
    with TestClient(bench.app) as client:
        client.post("/webhooks/rest/webhook", json={"sender": "a", "message": "do you do gift wrapping"})
        bench.app.state.trainer.recorder.flush()
        client.post("/api/v1/trainer/data/intents/greet/examples", headers=bench.auth(), json={"text": "ahoy matey"})
        data, models = snapshot(bench.settings.data_dir), sorted(os.listdir(bench.settings.models_dir))
        inbox = client.get("/api/v1/trainer/inbox", headers=bench.auth()).json()["items"]
        job = client.post("/api/v1/trainer/train", headers=bench.auth())
        assert job.status_code == 202
        job_id = job.json()["id"]
        assert client.post("/api/v1/trainer/train", headers=bench.auth()).status_code == 409  # one at a time
        runner = bench.app.state.trainer.jobs
        deadline = time.time() + 300
        while time.time() < deadline:  # until it is really training
            progress = client.get(f"/api/v1/trainer/jobs/{job_id}", headers=bench.auth()).json()["progress"]
            if progress and progress["stage"] not in ("loading data",):
                break
            time.sleep(0.5)
        process = runner.get(job_id).process
        os.killpg(process.pid, signal.SIGKILL)  # the machine dies mid-training
        while (status := client.get(f"/api/v1/trainer/jobs/{job_id}", headers=bench.auth()).json())["status"] == "running":
            time.sleep(0.2)
        assert status["status"] == "failed" and "ended with code" in status["error"]
        assert active_id(bench.settings.models_dir) == nlu_engine.model_id
        assert sorted(p for p in os.listdir(bench.settings.models_dir) if not p.startswith(".")) == \
            [p for p in models if not p.startswith(".")]
        assert snapshot(bench.settings.data_dir) == data
        assert client.get("/api/v1/trainer/inbox", headers=bench.auth()).json()["items"] == inbox
        assert client.get("/health").json()["model_id"] == nlu_engine.model_id


def test_a_cluster_becomes_a_new_intent(tmp_path: Path, nlu_engine: NLUEngine) -> None:
    from callpilot.trainer.inbox import Sighting, store_sighting

    bench = workbench(tmp_path, nlu_engine)
    texts = ["can i pay with bitcoin", "do you take crypto currency", "is paying in ethereum possible",
             "can i use dogecoin to pay", "do you accept crypto payments"]
    with bench.app.state.database.session() as session:
        ids = [store_sighting(session, Sighting(text=t, reason="fallback", call_id="c", channel="rest",
                                                predicted_intent="nlu_fallback", confidence=0.2)).id for t in texts]
    with TestClient(bench.app) as client:
        one = client.post("/api/v1/trainer/inbox/annotate", headers=bench.auth(),
                          json={"item_ids": ids[:1], "intent": "pay_with_crypto", "new_intent": True})
        assert one.status_code == 422 and "at least 5" in str(one.json()["detail"])
        assert not (bench.settings.data_dir / "nlu/trainer.yml").exists()
        made = client.post("/api/v1/trainer/inbox/annotate", headers=bench.auth(),
                           json={"item_ids": ids, "intent": "pay_with_crypto", "new_intent": True})
        assert made.status_code == 200, made.text
        assert "- pay_with_crypto" in (bench.settings.data_dir / "domain.yml").read_text()
        assert "- do you take crypto currency\n" in (bench.settings.data_dir / "nlu/trainer.yml").read_text()
        intents = {i["intent"]: i for i in client.get("/api/v1/trainer/data", headers=bench.auth()).json()["intents"]}
        assert intents["pay_with_crypto"]["examples"] == 5
        assert client.get("/api/v1/trainer/inbox", headers=bench.auth()).json()["items"] == []


ORDERS = ["where on earth is order 48215", "status of 41877 please", "could you look up my order for me"]


def span(text: str, words: str, entity: str) -> dict[str, object]:
    start = text.index(words)
    return {"start": start, "end": start + len(words), "entity": entity}


def test_a_cluster_is_assigned_with_entities_marked_on_each_item(tmp_path: Path, nlu_engine: NLUEngine) -> None:
    from callpilot.trainer.inbox import Sighting, store_sighting

    bench = workbench(tmp_path, nlu_engine)
    with bench.app.state.database.session() as session:
        a, b, c = (store_sighting(session, Sighting(text=t, reason="fallback", call_id="c", channel="rest",
                                                    predicted_intent="nlu_fallback", confidence=0.2)).id
                   for t in ORDERS)
    orders = bench.settings.data_dir / "nlu/orders.yml"
    with TestClient(bench.app) as client:
        data = client.get("/api/v1/trainer/data", headers=bench.auth()).json()
        assert "order_number" in data["entities"]
        schema = client.get("/openapi.json").json()["components"]["schemas"]
        assert {"item_ids", "items"} <= set(schema["ClusterAnnotation"]["properties"])
        before = snapshot(bench.settings.data_dir)
        marked = [{"id": a, "entities": [span(ORDERS[0], "48215", "order_number")]},
                  {"id": b, "entities": [span(ORDERS[1], "41877", "order_number")]}]
        # A bad span on one item: 422 naming that item, nothing written, every item still open.
        bad = client.post("/api/v1/trainer/inbox/annotate", headers=bench.auth(), json={
            "intent": "check_order_status", "version": data["version"], "item_ids": [c],
            "items": [marked[0], {"id": b, "entities": [{"start": 10, "end": 99, "entity": "order_number"}]}]})
        assert bad.status_code == 422, bad.text
        assert bad.json()["detail"]["problems"] == [
            f"inbox item {b} ('status of 41877 please'): entity 'order_number' span 10-99 is not inside the text "
            "(22 chars)"]
        unknown = client.post("/api/v1/trainer/inbox/annotate", headers=bench.auth(), json={
            "intent": "check_order_status", "items": [{"id": c, "entities": [span(ORDERS[2], "order", "parcel")]}],
            "item_ids": [a]})
        assert unknown.status_code == 422 and f"inbox item {c} " in unknown.text and "unknown entity 'parcel'" in \
            unknown.text
        malformed = [
            {"intent": "check_order_status"},  # no items at all
            {"intent": "check_order_status", "items": [marked[0], marked[0]]},  # one item twice
            {"intent": "check_order_status", "item_ids": [a, b], "entities": marked[0]["entities"]},  # whose?
        ]
        for body in malformed:
            refused = client.post("/api/v1/trainer/inbox/annotate", headers=bench.auth(), json=body)
            assert refused.status_code == 422, (body, refused.text)
        assert client.post("/api/v1/trainer/inbox/annotate", headers=bench.auth("agent"),
                           json={"intent": "check_order_status", "items": marked}).status_code == 403
        assert snapshot(bench.settings.data_dir) == before
        assert sorted(i["id"] for i in client.get("/api/v1/trainer/inbox", headers=bench.auth()).json()["items"]) \
            == sorted([a, b, c])
        # Each item's example with its own markup; comments and format elsewhere as they were.
        done = client.post("/api/v1/trainer/inbox/annotate", headers=bench.auth(), json={
            "intent": "check_order_status", "version": data["version"], "items": marked, "item_ids": [c]})
        assert done.status_code == 200, done.text
        assert done.json()["item_ids"] == [c, a, b]
        added = ["    - could you look up my order for me\n", "    - where on earth is order [48215](order_number)\n",
                 "    - status of [41877](order_number) please\n"]
        after = orders.read_text()
        assert "".join(added) in after
        for line in added:
            after = after.replace(line, "", 1)
        assert after == before[orders.as_posix()]
        assert {p: t for p, t in snapshot(bench.settings.data_dir).items() if p != orders.as_posix()} == \
            {p: t for p, t in before.items() if p != orders.as_posix()}
        audited = {i["id"]: i["resolution"] for i in
                   client.get("/api/v1/trainer/inbox?status=done", headers=bench.auth()).json()["items"]}
        assert {i: r["entities"] for i, r in audited.items()} == {
            a: [{**span(ORDERS[0], "48215", "order_number"), "value": None}],
            b: [{**span(ORDERS[1], "41877", "order_number"), "value": None}],
            c: [],
        }
        assert {r["intent"] for r in audited.values()} == {"check_order_status"}
