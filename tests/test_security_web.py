"""Issue 14, the web side: each check of docs/security.md against the real app (in process, or a real uvicorn)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.nlu import NLUEngine
from bot.urls import mask_url, mask_urls_in
from callpilot.app import create_app
from callpilot.records.apikeys import create_key
from callpilot.records.models import CallRecord
from callpilot.settings import Settings, SettingsError
from tests.rasa_payloads import REQUEST
from tests.records_fixtures import pg_schema_url  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
ACTION_TOKEN = "a-long-random-action-token-0042"
REDIS_WITH_PASSWORD = "redis://:s3cret@127.0.0.1:1/0"  # nothing listens on port 1


def settings(tmp_path: Path, **values: Any) -> Settings:
    return Settings.load(None, {}, data_dir=ROOT / "nlu_data", state_dir=tmp_path, audiosocket_port=0,
                         call_log=tmp_path / "calls.jsonl", **values)


def app_for(tmp_path: Path, engine: NLUEngine, **values: Any) -> Any:
    app = create_app(settings(tmp_path, **values), engine=engine)
    app.state.voice.start_loading = lambda: None  # no ASR/TTS models: these tests are about the web routes
    return app


# Item 5: passwords in URLs never reach /health or the logs


@pytest.mark.parametrize(("url", "masked"), [
    ("redis://:s3cret@10.0.0.5:6379/0", "redis://:***@10.0.0.5:6379/0"),
    ("postgresql+psycopg://cp:s3cret@db:5432/calls?sslmode=require", "postgresql+psycopg://cp:***@db:5432/calls?sslmode=require"),
    ("https://crm.example.com/api?api_key=s3cret&x=1", "https://crm.example.com/api?api_key=***&x=1"),
    ("http://127.0.0.1:8080/webhook?token=s3cret", "http://127.0.0.1:8080/webhook?token=***"),
    ("http://127.0.0.1:5005", "http://127.0.0.1:5005"),
    (None, "none"),
])
def test_mask_url(url: str | None, masked: str) -> None:
    assert mask_url(url) == masked
    if url:
        assert mask_urls_in(f"cannot reach {url}: refused") == f"cannot reach {masked}: refused"


def test_health_reports_states_and_no_log_line_holds_a_password(
    tmp_path: Path, nlu_engine: NLUEngine, pg_schema_url: str, caplog: pytest.LogCaptureFixture  # noqa: F811
) -> None:
    caplog.set_level(logging.INFO)
    database_url = pg_schema_url.replace("postgres@", "postgres:pgs3cret@")  # trust auth ignores the password
    assert "pgs3cret" in database_url
    app = app_for(tmp_path, nlu_engine, redis_url=REDIS_WITH_PASSWORD, database_url=database_url)
    with TestClient(app) as client:
        health = client.get("/health")
        # Readiness waits for the voice models too; the handoff's state is reported as a word, never a URL.
        assert health.json()["nlu"] == "ready" and health.json()["model_id"] == nlu_engine.model_id
        assert health.json()["handoff"] == "unavailable"
        assert set(health.json()) == {"status", "not_ready", "nlu", "voice", "detail", "model_id", "brain", "handoff",
                                      "leader", "worker", "pid"}
        assert app.state.records.ready.is_set()
    logged = caplog.text
    assert "cannot reach Redis at redis://:***@127.0.0.1:1/0" in logged  # the log still says where
    assert "call records in postgresql+psycopg://postgres:***@127.0.0.1:5432/test" in logged
    assert "s3cret" not in logged and "pgs3cret" not in logged and "s3cret" not in health.text


def test_an_unreachable_rasa_is_not_described_to_the_sender(tmp_path: Path, nlu_engine: NLUEngine) -> None:
    client = TestClient(app_for(tmp_path, nlu_engine, brain="rasa", rasa_url="http://rasa:pw@127.0.0.1:1",
                                action_token=ACTION_TOKEN))
    reply = client.post("/webhooks/rest/webhook", json={"sender": "s-1", "message": "hi"})
    assert reply.status_code == 200 and reply.json() == [{"recipient_id": "s-1",
                                                          "text": "Sorry, I can't help right now."}]


# The uvicorn access log: agent tokens in ?token= are masked


@pytest.fixture
def live_server(tmp_path: Path, nlu_engine: NLUEngine) -> Iterator[str]:
    """callpilot's app in a real uvicorn on a free port; uvicorn leaves logging alone, so caplog sees its lines."""
    server = uvicorn.Server(uvicorn.Config(app_for(tmp_path, nlu_engine), host="127.0.0.1", port=0,
                                           log_config=None, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(30)


def test_the_access_log_never_holds_a_token(live_server: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.INFO, logger="uvicorn.access")  # whatever an earlier in-process server configured
    secret = "agent-token-QWERTY123456"
    assert httpx.get(f"{live_server}/agent/api/me?token={secret}&x=1", timeout=10).status_code in (401, 503)
    assert httpx.post(f"{live_server}/webhook?token={secret}", json={}, timeout=10).status_code == 404
    deadline = time.monotonic() + 10
    def access() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]

    while not any("/webhook?token=" in line for line in access()) and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = access()
    assert any("/agent/api/me?token=***&x=1" in line for line in lines), lines
    assert secret not in caplog.text


# Item 3: the action server


def test_the_action_server_is_off_unless_rasa_uses_it_or_it_is_switched_on(
    tmp_path: Path, nlu_engine: NLUEngine
) -> None:
    off = TestClient(app_for(tmp_path, nlu_engine)).post("/webhook", json=REQUEST)
    assert off.status_code == 404 and "action server is off" in off.json()["detail"]
    no_token = TestClient(app_for(tmp_path, nlu_engine, action_server=True)).post("/webhook", json=REQUEST)
    assert no_token.status_code == 503 and "CALLPILOT_ACTION_TOKEN" in no_token.json()["detail"]
    with pytest.raises(SettingsError, match="action_token"):
        settings(tmp_path, action_token="short")


@pytest.mark.parametrize("brain", ["builtin", "rasa"])
def test_the_action_server_wants_the_token_rasa_sends(tmp_path: Path, nlu_engine: NLUEngine, brain: str) -> None:
    extra = {"action_server": True} if brain == "builtin" else {"brain": "rasa"}
    client = TestClient(app_for(tmp_path, nlu_engine, action_token=ACTION_TOKEN, **extra))
    forged = client.post("/webhook", json=REQUEST)  # e.g. a forged tracker cancelling someone's order
    assert forged.status_code == 401 and forged.headers["www-authenticate"] == "Bearer"
    assert client.post("/webhook?token=guess", json=REQUEST).status_code == 401
    assert client.post("/webhook", json=REQUEST, headers={"Authorization": "Bearer guess"}).status_code == 401
    ran = client.post(f"/webhook?token={ACTION_TOKEN}", json=REQUEST)  # how Rasa's EndpointConfig sends it
    assert ran.status_code == 200, ran.text
    assert any("48215" in (r.get("text") or "") or r.get("order_number") == "48215" for r in ran.json()["responses"])
    bearer = client.post("/webhook", json={"tracker": {}}, headers={"Authorization": f"Bearer {ACTION_TOKEN}"})
    assert bearer.status_code == 400  # through the gate, then the action server's own check


# Item 4: /model/reload is gone; the trainer's workbench (/api/v1/trainer) replaces it


def test_model_reload_is_gone_and_the_trainer_api_needs_a_trainer_key(tmp_path: Path, nlu_engine: NLUEngine) -> None:
    app = app_for(tmp_path, nlu_engine)
    app.state.database.upgrade()
    with app.state.database.session() as session:
        keys = {role: create_key(session, role, role, agent_id="ann" if role == "agent" else None)
                for role in ("trainer", "agent", "supervisor", "admin")}
    client = TestClient(app)
    assert client.post("/model/reload").status_code in (404, 405)
    for method, path in (("get", "/api/v1/trainer/inbox"), ("post", "/api/v1/trainer/train"),
                         ("get", "/api/v1/trainer/models"), ("post", "/api/v1/trainer/models/x/activate")):
        assert getattr(client, method)(path).status_code == 401
        for role in ("agent", "supervisor"):
            denied = getattr(client, method)(path, headers={"Authorization": f"Bearer {keys[role]}"})
            assert denied.status_code == 403, (path, role)
    for role in ("trainer", "admin"):
        assert client.get("/api/v1/trainer/inbox", headers={"Authorization": f"Bearer {keys[role]}"}).status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/v1/trainer/inbox/{item_id}/annotate" in paths
    assert not [path for path in paths if path.startswith("/trainer")]  # the page's copy stays out of the schema
    for role in ("trainer", "admin"):  # the page's copy answers too (the same routes)
        assert client.get("/trainer/api/inbox", headers={"Authorization": f"Bearer {keys[role]}"}).status_code == 200


# Item 6: the REST channel


def test_the_rest_channel_can_require_a_bearer_key(tmp_path: Path, nlu_engine: NLUEngine) -> None:
    client = TestClient(app_for(tmp_path, nlu_engine, rest_channel_token="rest-channel-key-0123456789"))
    body = {"sender": "u-3f9a1c", "message": "hello"}
    refused = client.post("/webhooks/rest/webhook", json=body)
    assert refused.status_code == 401 and "rest_channel_token" in refused.json()["detail"]
    assert client.post("/webhooks/rest/webhook", json=body, headers={"Authorization": "Bearer nope"}).status_code == 401
    ok = client.post("/webhooks/rest/webhook", json=body,
                     headers={"Authorization": "Bearer rest-channel-key-0123456789"})
    assert ok.status_code == 200 and ok.json()[0]["recipient_id"] == "u-3f9a1c"


def test_rest_texts_are_cut_before_they_are_cleaned_and_stored(tmp_path: Path, nlu_engine: NLUEngine) -> None:
    app = app_for(tmp_path, nlu_engine, max_text_chars=40)
    with TestClient(app) as client:
        long = "where is my order 48215 " + "blah " * 2000
        assert client.post("/webhooks/rest/webhook", json={"sender": "long-1", "message": long}).status_code == 200
        records = app.state.records
        assert records.writer.flush(30)
        with records.database.session() as session:
            row = session.scalar(select(CallRecord).where(CallRecord.channel == "text"))
        caller_lines = [line["text"] for line in row.transcript if line["speaker"] == "caller"]
    assert caller_lines == [long[:40]]


# Memory bounds: HTTP bodies


def test_request_bodies_over_the_limit_get_a_clear_413(tmp_path: Path, nlu_engine: NLUEngine) -> None:
    client = TestClient(app_for(tmp_path, nlu_engine, max_body_bytes=2048))
    small = client.post("/model/parse", json={"text": "hello"})
    assert small.status_code == 200
    declared = client.post("/model/parse", json={"text": "x" * 4000})
    assert declared.status_code == 413 and "at most 2048 bytes (setting max_body_bytes)" in declared.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"sender": "c", "message": "'
        for _ in range(10):
            yield b"y" * 500
        yield b'"}'

    streamed = client.post("/webhooks/rest/webhook", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413 and "max_body_bytes" in streamed.json()["detail"]
    form = client.post("/supervisor/login", content=b"key=" + b"k" * 3000,
                       headers={"content-type": "application/x-www-form-urlencoded"})
    assert form.status_code == 413


# Issue 16: what a supervisor does on the floor lands in the records' audit log, under their key


def test_supervisor_actions_are_in_the_audit_log_under_their_key(tmp_path: Path, nlu_engine: NLUEngine) -> None:
    app = app_for(tmp_path, nlu_engine)
    app.state.database.upgrade()
    with app.state.database.session() as session:
        supervisor = create_key(session, "supervisor", "Mei (floor)")
        admin = create_key(session, "admin", "ops")
    with TestClient(app) as client:
        changed = client.patch("/supervisor/api/queues/orders", json={"closed": True},
                               headers={"Authorization": f"Bearer {supervisor}"})
        assert changed.status_code == 200 and changed.json()["closed"] is True
        signed_in = TestClient(app)
        signed_in.post("/supervisor/login", data={"key": supervisor}, follow_redirects=False)
        assert signed_in.post("/supervisor/api/queues/orders/reset").status_code == 200  # the session's cookie
        audit = client.get("/api/v1/audit", headers={"Authorization": f"Bearer {admin}"}).json()
    key_id = supervisor.split("_")[1]
    rows = [(row["actor"], row["action"], row["target"]) for row in audit if row["action"].startswith("queue.")]
    assert sorted(rows) == [(f"apikey:{key_id}", "queue.change", "orders"), (f"apikey:{key_id}", "queue.reset", "orders")]
