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
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, select, text

from callpilot.records.db import Database
from callpilot.records.models import CallRecord
from tests.live_processes import CLI, RATE, ROOT, Desk, loud_ms, servers, wait_for
from tests.records_fixtures import POSTGRES
from voice_gateway.testing import TwilioCaller, espeak_wav, read_pcm

REDIS_DB = 11  # a database of the real Redis of its own, emptied first


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


def test_two_processes_share_the_floor_and_a_killed_one_strands_nobody(tmp_path: Path, pg_url: str) -> None:
    redis_url = f"redis://127.0.0.1:6379/{REDIS_DB}"
    redis.Redis.from_url(redis_url).flushdb()
    shared = tmp_path / "shared"
    shared.mkdir()
    base_env = {**os.environ, "HF_HUB_OFFLINE": "1", "CALLPILOT_AUDIOSOCKET_PORT": "0",
                "CALLPILOT_REDIS_URL": redis_url, "CALLPILOT_DATABASE_URL": pg_url,
                "CALLPILOT_HANDOFF": json.dumps({"router_lease_s": 3}),  # the agent directory: in Redis
                "CALLPILOT_RECORDINGS_DIR": str(shared / "recordings")}

    def env_for(name: str) -> dict[str, str]:
        return {**base_env, "CALLPILOT_STATE_DIR": str(tmp_path / name), "CALLPILOT_CALL_LOG": str(tmp_path / f"{name}.jsonl")}

    added = subprocess.run([*CLI, "agent", "add", "Ann", "--skills", "orders,returns,tech,billing,general"],
                           cwd=ROOT, env=env_for("a"), capture_output=True, text=True, timeout=60)
    token = added.stdout.strip()
    assert token.startswith("cpa_"), added.stderr
    assert "to Redis at" in added.stderr and not (tmp_path / "a" / "agents.json").exists()
    ann_voice = read_pcm(espeak_wav(tmp_path / "ann.wav", "Hello, this is Ann. How can I help you today?", 16000,
                                    pad_s=0.5))
    ask = read_pcm(espeak_wav(tmp_path / "ask.wav", "I want to talk to a human agent please", RATE, pad_s=0.0))
    desk: Desk | None = None
    with servers(tmp_path, {"a": env_for("a"), "b": env_for("b")}) as started:
        a, b = started["a"], started["b"]
        try:
            desk = Desk(f"{b.ws}/agent/ws", token, ann_voice)  # Ann signs in on B
            desk.start()
            wait_for(lambda: any(m.get("status") == "available" for m in desk.of("status_changed")), 10,
                     "Ann available")

            # 1. A's caller, B's agent.
            # The callers' scripts run long (they hang up only if nobody ended the call): a loaded machine is slow.
            first = TwilioCaller(f"{a.ws}/media/twilio", ask, speak_at_s=6.0, limit_s=240.0)
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
            talking = TwilioCaller(f"{a.ws}/media/twilio", ask, speak_at_s=6.0, limit_s=240.0)
            talking.start()
            wait_for(lambda: desk.call_id is not None and desk.call_id != first_id, 120, "Ann to take the second call")
            talking_id = desk.call_id
            waiting = TwilioCaller(f"{a.ws}/media/twilio", ask, speak_at_s=6.0, limit_s=240.0)
            waiting.start()
            queue_key = "callpilot:handoff:live"
            r = redis.Redis.from_url(redis_url, decode_responses=True)
            wait_for(lambda: any(r.zcard(k) for k in r.keys("callpilot:handoff:queue:*:waiting")), 120,
                     "the second caller waiting in the queue")
            offers_before = len(desk.of("offer"))
            a.process.send_signal(signal.SIGKILL)
            a.process.wait(timeout=10)
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
    assert desk is not None and desk.error is None, desk.error if desk else None
    assert first_id is not None and talking_id is not None

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
