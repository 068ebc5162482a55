"""Settings, the HTTP API (in process and as a real server) and the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from websockets.sync.client import connect

from bot.nlu import NLUEngine
from callpilot.app import create_app
from callpilot.settings import Settings, SettingsError
from tests.voice_helpers import free_port, stop_process

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "callpilot"]


# Settings


def test_settings_precedence_file_then_env_then_flags(tmp_path: Path) -> None:
    config = tmp_path / "callpilot.yml"
    config.write_text("port: 9000\nhost: 0.0.0.0\nbrain: rasa\n")
    env = {"CALLPILOT_PORT": "9100", "CALLPILOT_FALLBACK_THRESHOLD": "0.4", "OTHER": "x"}
    s = Settings.load(config, env)
    assert (s.port, s.host, s.brain, s.fallback_threshold) == (9100, "0.0.0.0", "rasa", 0.4)
    assert Settings.load(config, env, port=9200).port == 9200
    assert Settings.load(None, {}).port == 8080


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CALLPILOT_PORT": "eighty"}, "port"),
        ({"CALLPILOT_BRAIN": "gpt"}, "brain"),
        ({"CALLPILOT_FALLBACK_THRESHOLD": "2"}, "fallback_threshold"),
    ],
)
def test_bad_settings_name_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.load(None, env)


def test_unknown_keys_in_the_config_file_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "c.yml"
    config.write_text("prot: 80\n")
    with pytest.raises(SettingsError, match="prot"):
        Settings.load(config, {})


# HTTP API in process


@pytest.fixture()
def client(nlu_engine: NLUEngine) -> TestClient:
    return TestClient(create_app(Settings.load(None, {}, data_dir=ROOT / "nlu_data"), engine=nlu_engine))


def test_health_reports_the_active_model_and_is_not_ready_without_the_voice(
    client: TestClient, nlu_engine: NLUEngine
) -> None:
    answer = client.get("/health")
    # This client runs no lifespan: the voice models never start loading and the handoff service is not started.
    assert answer.status_code == 503
    assert answer.json() == {"status": "loading", "not_ready": ["voice"], "nlu": "ready", "voice": "loading",
                             "detail": None, "model_id": nlu_engine.model_id, "brain": "builtin",
                             "handoff": "starting", "leader": False,  # no Redis yet: not the leader
                             "worker": None, "pid": os.getpid()}  # one process, no workers


def test_parse_over_http_matches_the_engine(client: TestClient, nlu_engine: NLUEngine) -> None:
    answer = client.post("/model/parse", json={"text": "where is my order 48215", "message_id": "m1"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["message_id"] == "m1"
    assert body["intent"] == nlu_engine.parse("where is my order 48215")["intent"]
    assert body["entities"][0]["value"] == "48215"


@pytest.mark.parametrize("body", [b"not json", b'{"txt": "hi"}', b'["hi"]', b'{"text": 5}'])
def test_bad_parse_requests_get_a_clear_400(client: TestClient, body: bytes) -> None:
    answer = client.post("/model/parse", content=body, headers={"content-type": "application/json"})
    assert answer.status_code in (400, 422)
    assert "text" in answer.text or "JSON" in answer.text


def test_rest_channel_speaks_rasas_format(client: TestClient) -> None:
    answer = client.post("/webhooks/rest/webhook", json={"sender": "web-1", "message": "hello"})
    assert answer.status_code == 200
    messages = answer.json()
    assert messages and all(m["recipient_id"] == "web-1" and m["text"] for m in messages)
    answer = client.post("/webhooks/rest/webhook", json={"sender": "web-1", "message": "what's your return policy"})
    assert "return" in " ".join(m.get("text", "") for m in answer.json()).lower()


def test_action_server_webhook_refuses_a_bad_request(nlu_engine: NLUEngine) -> None:
    settings = Settings.load(None, {}, data_dir=ROOT / "nlu_data", action_server=True,
                             action_token="action-token-for-this-test")
    client = TestClient(create_app(settings, engine=nlu_engine))
    answer = client.post("/webhook?token=action-token-for-this-test", json={"next_action": "action_check_order_status"})
    assert answer.status_code == 400
    assert "error" in answer.json()


def test_health_is_503_until_the_model_is_loaded(tmp_path: Path) -> None:
    empty = tmp_path / "data"
    empty.mkdir()
    (empty / "nlu.yml").write_text("version: '3.1'\nnlu:\n- intent: greet\n  examples: |\n    - hi\n  bad: [\n")
    settings = Settings.load(None, {}, data_dir=empty, models_dir=tmp_path / "models")
    with TestClient(create_app(settings)) as c:
        for _ in range(100):
            answer = c.get("/health")
            if answer.json()["status"] != "loading":
                break
            time.sleep(0.05)
        assert answer.status_code == 503
        assert answer.json()["status"] == "error" and "nlu" in answer.json()["not_ready"]
        assert answer.json()["detail"].startswith("nlu: ") and "nlu.yml:" in answer.json()["detail"]
        assert c.get("/health/live").json() == {"status": "alive"}  # not ready, but alive: no restart loop


# The real server and the command line


def test_callpilot_run_serves_health_and_parse(nlu_engine: NLUEngine) -> None:
    port = free_port()
    proc = subprocess.Popen([*CLI, "run", "--port", str(port)], cwd=ROOT, env={**os.environ},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                if health.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            time.sleep(0.5)
        assert health.json()["model_id"] == nlu_engine.model_id
        parsed = httpx.post(f"http://127.0.0.1:{port}/model/parse", json={"text": "I want to talk to an agent"})
        assert parsed.json()["intent"]["name"] == "talk_to_human"
        # A media stream is 50 small messages a second each way: compressing them costs the event loop more
        # than it saves, so the server declines the permessage-deflate a client offers.
        with connect(f"ws://127.0.0.1:{port}/agent/ws", compression="deflate") as ws:
            assert ws.protocol.extensions == []
    finally:
        stop_process(proc)


def test_parse_from_stdin_prints_one_json_per_line(nlu_engine: NLUEngine) -> None:
    done = subprocess.run([*CLI, "parse", "-"], cwd=ROOT, input="hello\nwhere is order 48215\n",
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["text"] for r in lines] == ["hello", "where is order 48215"]
    assert lines[1]["intent"]["name"] == "check_order_status"


def test_data_validate_reports_file_and_line(tmp_path: Path) -> None:
    data = tmp_path / "nlu_data"
    data.mkdir()
    (data / "nlu.yml").write_text(
        'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hi\n    - hello\n'
    )
    (data / "domain.yml").write_text('version: "3.1"\nintents: [greet]\n')
    done = subprocess.run([*CLI, "data", "validate", "--data", str(data)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert f"{data}/nlu.yml:3: error: intent 'greet' has only 2 example(s)" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_data_validate_accepts_the_demo_data() -> None:
    done = subprocess.run([*CLI, "data", "validate"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
