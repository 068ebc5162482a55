"""Two real `callpilot run` processes on one real Redis and one real PostgreSQL, as on two machines:

1. A caller on process A asks for a person; Ann, signed in on process B, takes the call, talks (the caller
   hears her through Redis), hangs up and wraps up; the records (PostgreSQL) have the call with Ann's wrap-up.
2. Two more callers on A: Ann takes one, the other waits in the queue (Ann is busy). A is killed with SIGKILL.
   Ann's desk sees her call end (`caller_lost`); B takes A's queue entry over and ends it too, so it is never
   offered to Ann when she is free again; the records close both calls as interrupted, caller lost.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis
from sqlalchemy import create_engine, select, text
from websockets.sync.client import connect

from callpilot.records.db import Database
from callpilot.records.models import CallRecord
from tests.records_fixtures import POSTGRES
from tests.test_browser_agent import CLI, FRAME, RATE, ROOT, Caller, espeak_wav, free_port, read_pcm, wait_healthy
from tests.voice_helpers import stop_process

REDIS_DB = 11  # a database of the real Redis of its own, emptied first


class Desk(threading.Thread):
    """Ann's desk on process B without a browser: accepts every offer, speaks `voice` in a loop while connected,
    hangs up and wraps up when the test says so; keeps every message."""

    def __init__(self, url: str, token: str, voice: bytes) -> None:
        super().__init__(daemon=True)
        self.url, self.token, self.voice = url, token, voice
        self.messages: list[dict[str, Any]] = []
        self.call_id: str | None = None
        self.hang_up = threading.Event()
        self.wrap_up = threading.Event()
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == kind]

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # reported by the test
            self.error = exc

    def _run(self) -> None:
        with connect(self.url) as ws:
            ws.send(json.dumps({"type": "hello", "token": self.token}))
            ws.send(json.dumps({"type": "status", "status": "available"}))
            at, pinged = 0, time.monotonic()
            while not self.stop.is_set():
                try:
                    message = ws.recv(timeout=0.02)
                except TimeoutError:
                    message = None
                if isinstance(message, str):
                    data = json.loads(message)
                    self.messages.append(data)
                    if data["type"] == "offer":
                        ws.send(json.dumps({"type": "accept", "offer_id": data["offer_id"]}))
                    elif data["type"] == "connected":
                        self.call_id = data["call_id"]
                    elif data["type"] == "call_ended":
                        self.call_id = None
                if self.call_id is not None:  # Ann talks: one 20 ms frame per 20 ms
                    ws.send(self.voice[at:at + 640].ljust(640, b"\0"))
                    at = (at + 640) % len(self.voice)
                if self.hang_up.is_set() and self.call_id is not None:
                    self.hang_up.clear()
                    ws.send(json.dumps({"type": "hang_up"}))
                if self.wrap_up.is_set() and self.call_id is None:
                    self.wrap_up.clear()
                    ws.send(json.dumps({"type": "wrap_up", "disposition": "resolved", "notes": "multi-process"}))
                if time.monotonic() - pinged > 5:
                    ws.send(json.dumps({"type": "ping"}))
                    pinged = time.monotonic()


def wait_for(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def pg_url() -> Iterator[str]:
    schema = f"callpilot_mp_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def loud_ms(pcm: bytes) -> int:
    frames = [pcm[i:i + FRAME] for i in range(0, len(pcm) - FRAME + 1, FRAME)]
    return 20 * sum(np.sqrt(np.mean(np.frombuffer(f, "<i2").astype(np.float64) ** 2)) > 300 for f in frames)


def test_two_processes_share_the_floor_and_a_killed_one_strands_nobody(tmp_path: Path, pg_url: str) -> None:
    redis_url = f"redis://127.0.0.1:6379/{REDIS_DB}"
    redis.Redis.from_url(redis_url).flushdb()
    shared = tmp_path / "shared"
    shared.mkdir()
    base_env = {**os.environ, "HF_HUB_OFFLINE": "1", "CALLPILOT_AUDIOSOCKET_PORT": "0",
                "CALLPILOT_REDIS_URL": redis_url, "CALLPILOT_DATABASE_URL": pg_url,
                "CALLPILOT_HANDOFF": json.dumps({"agents_file": str(shared / "agents.json"), "router_lease_s": 3}),
                "CALLPILOT_RECORDINGS_DIR": str(shared / "recordings")}

    def env_for(name: str) -> dict[str, str]:
        return {**base_env, "CALLPILOT_STATE_DIR": str(tmp_path / name), "CALLPILOT_CALL_LOG": str(tmp_path / f"{name}.jsonl")}

    added = subprocess.run([*CLI, "agent", "add", "Ann", "--skills", "orders,returns,tech,billing,general"],
                           cwd=ROOT, env=env_for("a"), capture_output=True, text=True, timeout=60)
    token = added.stdout.strip()
    assert token.startswith("cpa_"), added.stderr
    ann_voice = read_pcm(espeak_wav(tmp_path / "ann.wav", "Hello, this is Ann. How can I help you today?", 16000,
                                    pad_s=0.5))
    ask = read_pcm(espeak_wav(tmp_path / "ask.wav", "I want to talk to a human agent please", RATE, pad_s=0.0))
    ports = {"a": free_port(), "b": free_port()}
    servers = {name: subprocess.Popen([*CLI, "run", "--port", str(port)], cwd=ROOT, env=env_for(name),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
               for name, port in ports.items()}
    desk: Desk | None = None
    try:
        for name, server in servers.items():
            wait_healthy(f"http://127.0.0.1:{ports[name]}", server)
        desk = Desk(f"ws://127.0.0.1:{ports['b']}/agent/ws", token, ann_voice)  # Ann signs in on B
        desk.start()
        wait_for(lambda: any(m.get("status") == "available" for m in desk.of("status_changed")), 10, "Ann available")

        # 1. A's caller, B's agent.
        # The callers' scripts run long (they hang up only if nobody ended the call): a loaded machine is slow.
        first = Caller(f"ws://127.0.0.1:{ports['a']}/media/twilio", ask, speak_at_s=6.0, limit_s=240.0)
        first.start()
        wait_for(lambda: desk.call_id is not None, 120, "Ann to take the first call")
        first_id = desk.call_id
        joined_at = len(first.heard)
        time.sleep(5)  # Ann talks
        heard_ann = bytes(first.heard[joined_at:])
        desk.hang_up.set()
        wait_for(lambda: desk.of("call_ended"), 10, "the first call to end")
        desk.wrap_up.set()
        wait_for(lambda: desk.of("wrapped_up"), 10, "the wrap-up")
        first.join(timeout=30)
        assert first.closed_by_server and first.error is None
        assert loud_ms(heard_ann) > 1500, "the caller on A did not hear Ann on B"

        # 2. Ann talks to one caller, the other waits; then A dies.
        talking = Caller(f"ws://127.0.0.1:{ports['a']}/media/twilio", ask, speak_at_s=6.0, limit_s=240.0)
        talking.start()
        wait_for(lambda: desk.call_id is not None and desk.call_id != first_id, 120, "Ann to take the second call")
        talking_id = desk.call_id
        waiting = Caller(f"ws://127.0.0.1:{ports['a']}/media/twilio", ask, speak_at_s=6.0, limit_s=240.0)
        waiting.start()
        queue_key = "callpilot:handoff:live"
        r = redis.Redis.from_url(redis_url, decode_responses=True)
        wait_for(lambda: any(r.zcard(k) for k in r.keys("callpilot:handoff:queue:*:waiting")), 120,
                 "the second caller waiting in the queue")
        offers_before = len(desk.of("offer"))
        servers["a"].send_signal(signal.SIGKILL)
        servers["a"].wait(timeout=10)
        wait_for(lambda: any(m["call_id"] == talking_id for m in desk.of("call_ended")), 30,
                 "Ann's desk to see the call end")
        ended = next(m for m in desk.of("call_ended") if m["call_id"] == talking_id)
        assert ended["reason"] == "caller_lost"
        time.sleep(6)  # B took A's queue entry over and ended it
        desk.wrap_up.set()
        wait_for(lambda: len(desk.of("wrapped_up")) == 2, 10, "the second wrap-up")
        time.sleep(8)  # Ann is free: the dead caller's entry must not ring her
        late = [(m["context"]["call_id"], m.get("offer_id")) for m in desk.of("offer")[offers_before:]]
        assert not late, (late, talking_id, r.hgetall(f"callpilot:handoff:call:{late[0][0]}") if late else None)
        assert not r.hkeys(queue_key)
    finally:
        if desk is not None:
            desk.stop.set()
            desk.join(timeout=10)
        for server in servers.values():
            if server.poll() is None:
                stop_process(server)
    assert desk.error is None, desk.error

    database = Database(pg_url)
    try:
        with database.session() as session:
            rows = {row.call_id: row for row in session.scalars(select(CallRecord))}
    finally:
        database.dispose()
    ann_id = desk.of("welcome")[0]["agent"]["agent_id"]
    assert rows[first_id].agent_id == ann_id  # answered on B, recorded from both processes' events
    assert (rows[first_id].status, rows[first_id].disposition) == ("completed", "resolved")
    lost = {call_id: row for call_id, row in rows.items() if call_id not in (first_id,)}
    assert (lost[talking_id].status, lost[talking_id].end_reason) == ("interrupted", "caller_lost")
    assert lost[talking_id].disposition == "resolved"  # Ann's wrap-up, written by B
    others = [row for call_id, row in lost.items() if call_id != talking_id]
    assert len(others) == 1 and (others[0].status, others[0].end_reason) == ("interrupted", "caller_lost")
    assert others[0].agent_id is None  # never answered
