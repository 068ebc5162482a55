"""PostgreSQL stopped for 30 s in the middle of calls, with a real `callpilot run` on a private PostgreSQL server
(`pg_ctl stop -m fast`, then `start` on the same data folder): the calls go on and end normally, /health stays
ready, /metrics shows the records waiting, and once the database is back every call is in it, nothing lost."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.live_processes import RATE, free_port, loud_ms, servers, wait_for
from voice_gateway.testing import TwilioCaller, espeak_wav, read_pcm

PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), None)


class PrivatePostgres:
    """A PostgreSQL server of the test's own (initdb as the `postgres` user, trust auth, 127.0.0.1 only)."""

    def __init__(self) -> None:
        assert PG_BIN is not None, "PostgreSQL's server binaries (initdb, pg_ctl) are needed"
        self.folder = Path(tempfile.mkdtemp(prefix="callpilot-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        shutil.chown(self.folder, "postgres", "postgres")
        self._as_postgres(f"{PG_BIN}/initdb -D {self.data} -A trust -U postgres --no-sync")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, command: str) -> None:
        done = subprocess.run(["su", "postgres", "-s", "/bin/sh", "-c", command], capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_postgres(f"{PG_BIN}/pg_ctl -D {self.data} -o '{options}' -l {self.folder}/log -w start")

    def stop(self) -> None:
        self._as_postgres(f"{PG_BIN}/pg_ctl -D {self.data} -m fast -w stop")

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    if os.geteuid() != 0:
        pytest.fail("this test starts its own PostgreSQL as the postgres user: run the suite as root (as CI does)")
    server = PrivatePostgres()
    server.start()
    yield server
    server.remove()


def metric(base: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", httpx.get(f"{base}/metrics", timeout=5).text, re.M)
    return float(found.group(1)) if found else 0.0


def test_calls_go_on_while_postgresql_is_stopped_for_30_s_and_every_record_arrives_after(
        tmp_path: Path, postgres: PrivatePostgres) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CALLPILOT_AUDIOSOCKET_PORT": "0",
           "CALLPILOT_DATABASE_URL": postgres.url, "CALLPILOT_STATE_DIR": str(tmp_path / "var"),
           "CALLPILOT_CALL_LOG": str(tmp_path / "calls.jsonl"), "CALLPILOT_RECORDINGS_DIR": str(tmp_path / "rec")}
    env.pop("CALLPILOT_REDIS_URL", None)
    questions = [read_pcm(espeak_wav(tmp_path / "hours.wav", "What are your opening hours?", RATE, pad_s=0.0)),
                 read_pcm(espeak_wav(tmp_path / "order.wav", "Where is my order four eight two one five?", RATE,
                                     pad_s=0.0))]
    with servers(tmp_path, {"server": env}) as started:
        server = started["server"]
        first = TwilioCaller(f"{server.ws}/media/twilio", questions[0], speak_at_s=6.0, limit_s=10.0)
        first.start()
        time.sleep(2)
        postgres.stop()  # mid-call: the greeting is playing
        stopped_at = time.monotonic()
        second = TwilioCaller(f"{server.ws}/media/twilio", questions[1], speak_at_s=6.0, limit_s=10.0)
        second.start()
        first.join(timeout=60)
        second.join(timeout=60)
        assert httpx.get(f"{server.http}/health", timeout=5).status_code == 200  # still ready without a database
        waiting = metric(server.http, "callpilot_records_pending_events")
        assert waiting > 0, "the records writer has nothing waiting although the database is away"
        time.sleep(max(0.0, 30 - (time.monotonic() - stopped_at)))
        postgres.start()
        wait_for(lambda: metric(server.http, "callpilot_records_pending_events") == 0, 90,
                 "the records to be written after the database came back")
        assert metric(server.http, 'callpilot_records_events{outcome="written"}') >= waiting

    for caller in (first, second):
        assert caller.error is None
        assert loud_ms(bytes(caller.heard[int(9 * RATE * 2):])) > 1000, "no answer after the question"
    engine = create_engine(postgres.url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT call_id, status, intents, transcript FROM calls")).all()
    finally:
        engine.dispose()
    turns: dict[str, int] = {}  # what the call log (a file, never away) says happened
    for line in (tmp_path / "calls.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event["event"] == "turn" and event.get("text"):
            turns[event["call_id"]] = turns.get(event["call_id"], 0) + 1
    assert len(rows) == 2 and {row.call_id for row in rows} == set(turns), rows
    for row in rows:
        assert row.status == "completed"
        assert len(row.transcript) == turns[row.call_id]  # every turn of the outage, none lost
        assert [t["speaker"] for t in row.transcript].count("caller") == 1
    assert any(row.intents == ["opening_hours"] for row in rows)
