"""The model swap: a turn in progress finishes on the old parts, the next runs on the new ones; activations
reach every process sharing a Redis (the real one at 127.0.0.1:6379)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from fastapi.testclient import TestClient

from bot.dialogue.swap import SwapLock
from bot.nlu import NLUEngine
from callpilot.app import create_app
from tests.trainer_fixtures import workbench

REDIS = "redis://127.0.0.1:6379/0"


def test_a_swap_waits_for_the_turn_in_progress_and_holds_new_ones_back() -> None:
    lock, order = SwapLock(), []
    in_turn, swap_waiting = threading.Event(), threading.Event()

    def turn() -> None:
        with lock.turn():
            in_turn.set()
            swap_waiting.wait(5)
            time.sleep(0.2)
            order.append("old turn ends")

    def swap() -> None:
        in_turn.wait(5)
        swap_waiting.set()
        with lock.swap():
            order.append("swapped")

    threads = [threading.Thread(target=turn), threading.Thread(target=swap)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    with lock.turn():
        order.append("new turn")
    assert order == ["old turn ends", "swapped", "new turn"]


def test_an_activation_reaches_the_other_processes_over_redis(tmp_path: Path, nlu_engine: NLUEngine) -> None:
    bench = workbench(tmp_path, nlu_engine, redis_url=REDIS)
    other_app = create_app(bench.settings, engine=nlu_engine)
    other_app.state.voice.start_loading = lambda: None
    with TestClient(bench.app) as client, TestClient(other_app) as other:
        other.post("/webhooks/rest/webhook", json={"sender": "x", "message": "hello"})  # its engine is built
        before = other_app.state.holder.engine
        activated = client.post(f"/api/v1/trainer/models/{nlu_engine.model_id}/activate", headers=bench.auth())
        assert activated.status_code == 200, activated.text
        deadline = time.time() + 30
        while other_app.state.holder.engine is before:
            assert time.time() < deadline, "the other process never switched"
            time.sleep(0.1)
        assert other_app.state.holder.engine.model_id == nlu_engine.model_id
        assert other.post("/webhooks/rest/webhook", json={"sender": "x", "message": "where is my order"}).json()
        assert client.post("/api/v1/trainer/models/nlu-missing/activate", headers=bench.auth()).status_code == 404


def test_a_model_that_fails_conversation_tests_needs_an_override(tmp_path: Path, nlu_engine: NLUEngine) -> None:
    import json
    import shutil

    bench = workbench(tmp_path, nlu_engine)
    models = bench.settings.models_dir
    shutil.copytree(bench.settings.data_dir, models / nlu_engine.model_id / "data")
    failing = {"name": "greeting", "path": "tests/conversations/01.yml", "failures": ["turn 2: expected greet"]}
    (models / nlu_engine.model_id / "trainer.json").write_text(json.dumps({"evaluation": {
        "model_id": nlu_engine.model_id, "breaks_conversations": True,
        "conversations": {"passed": 54, "total": 55, "failed": [failing]}}}))
    with TestClient(bench.app) as client:
        refused = client.post(f"/api/v1/trainer/models/{nlu_engine.model_id}/activate", headers=bench.auth())
        assert refused.status_code == 409 and "greeting" in refused.json()["detail"]
        forced = client.post(f"/api/v1/trainer/models/{nlu_engine.model_id}/activate", headers=bench.auth(),
                             json={"override": True})
        assert forced.status_code == 200
        listed = client.get("/api/v1/trainer/models", headers=bench.auth()).json()
        assert listed[0]["breaks_conversations"] and listed[0]["active"]
