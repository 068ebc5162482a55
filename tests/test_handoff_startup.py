"""Redis down when the server starts: a clear error, the bot keeps answering, and handoff comes up by itself
once Redis answers."""

from __future__ import annotations

import logging
import socket
import socketserver
import threading
import time
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from bot.nlu import NLUEngine
from callpilot.app import create_app
from callpilot.settings import Settings
from tests.voice_helpers import free_port

ROOT = Path(__file__).resolve().parent.parent
DB = 13  # a Redis database of its own, emptied before and after


class _Pipe(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        upstream = socket.create_connection(("127.0.0.1", 6379))

        def pump(src: socket.socket, dst: socket.socket) -> None:
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                dst.close()

        threading.Thread(target=pump, args=(upstream, self.request), daemon=True).start()
        pump(self.request, upstream)


@pytest.fixture
def clean_db() -> redis.Redis:
    client = redis.Redis(db=DB)
    try:
        client.flushdb()
    except redis.ConnectionError as exc:
        pytest.fail(f"the real Redis on 127.0.0.1:6379 is needed (.ci/run starts it): {exc}")
    yield client
    client.flushdb()


def test_redis_down_at_start_is_reported_and_handoff_comes_up_when_redis_does(
    nlu_engine: NLUEngine, tmp_path: Path, clean_db: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="callpilot.handoff")
    port = free_port()
    settings = Settings.load(None, {}, data_dir=ROOT / "nlu_data", state_dir=tmp_path, results_dir=tmp_path,
                             audiosocket_port=0, redis_url=f"redis://127.0.0.1:{port}/{DB}")
    with TestClient(create_app(settings, engine=nlu_engine)) as client:
        health = client.get("/health").json()
        assert health["handoff"] == "unavailable"  # a state: the reason, with the URL, is in the log
        assert "cannot reach Redis at redis://127.0.0.1:" in caplog.text
        # The bot still answers.
        reply = client.post("/webhooks/rest/webhook", json={"sender": "s1", "message": "what are your opening hours"})
        assert reply.status_code == 200 and reply.json()
        # The agent desktop says the service is not there rather than failing strangely.
        assert client.get("/agent/api/me", headers={"Authorization": "Bearer nope"}).status_code in (401, 503)

        relay = socketserver.ThreadingTCPServer(("127.0.0.1", port), _Pipe)
        relay.daemon_threads = True
        threading.Thread(target=relay.serve_forever, daemon=True).start()
        try:
            deadline = time.monotonic() + 20  # retries back off 1, 2, 4 ... s
            while time.monotonic() < deadline and client.get("/health").json()["handoff"] != "ready":
                time.sleep(0.2)
            health = client.get("/health").json()
            assert health["handoff"] == "ready"
            assert clean_db.keys("*"), "the handoff service writes its state into that Redis database"
        finally:
            relay.shutdown()
            relay.server_close()
