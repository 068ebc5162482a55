"""The records inside the server: schema upgraded at start, call-log events reach /api/v1/calls."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from bot.nlu import NLUEngine
from callpilot.app import create_app
from callpilot.cli import app as cli
from callpilot.records.db import Database
from callpilot.records.migrate import current_revision, head_revision
from callpilot.records.models import CallRecord
from callpilot.records.projection import RecordEvent
from callpilot.records.runtime import RecordsRuntime
from callpilot.settings import Settings
from tests.records_fixtures import FlakyProxy, pg_schema_url  # noqa: F401
from voice_gateway.call_log import CallLog, LifecycleKind

ROOT = Path(__file__).resolve().parent.parent


def _wait(condition: object, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_calls_logged_by_the_voice_gateway_show_up_in_the_api(tmp_path: Path, nlu_engine: NLUEngine) -> None:
    settings = Settings.load(None, {}, data_dir=ROOT / "nlu_data", database_url=f"sqlite:///{tmp_path / 'rec.db'}",
                             audiosocket_port=0, call_log=tmp_path / "calls.jsonl")
    app = create_app(settings, engine=nlu_engine)
    app.state.voice.start_loading = lambda: None  # this test needs the records, not the speech models
    runner = CliRunner()
    env = {"CALLPILOT_DATABASE_URL": settings.database_url or ""}
    key = runner.invoke(cli, ["apikey", "create", "--role", "supervisor", "--name", "wallboard"], env=env)
    assert key.exit_code == 0, key.output
    headers = {"Authorization": f"Bearer {key.stdout.strip().splitlines()[0]}"}

    with TestClient(app) as client:
        records = app.state.records
        _wait(records.ready.is_set)
        engine = records.database.engine
        assert current_revision(engine) == head_revision(engine)

        # The voice gateway's call log, with the listeners the app registered (what VoiceRuntime.load does).
        call_log = CallLog(settings.call_log)
        for listener in app.state.voice.call_log_listeners:
            call_log.subscribe(listener)
        for n in range(3):
            call_log.record(f"sim-{n}", LifecycleKind.STARTED, 0, transport="twilio", caller="+16175550142")
            call_log.record(f"sim-{n}", LifecycleKind.TURN, 900, speaker="caller", text="where is my order 48215")
            call_log.record(f"sim-{n}", LifecycleKind.ENDED, 5000, reason="caller_hangup")
        assert records.writer.flush(30)

        page = client.get("/api/v1/calls", headers=headers).json()
        assert page["total"] == 3
        assert {c["call_id"] for c in page["items"]} == {"sim-0", "sim-1", "sim-2"}
        assert all(c["customer_id"] == "C001" and c["contained"] for c in page["items"])
        assert client.get("/api/v1/calls").status_code == 401

        # A REST-channel conversation becomes a text record too.
        replies = client.post("/webhooks/rest/webhook", json={"sender": "web-1", "message": "hello"}).json()
        assert replies and records.writer.flush(30)
        texts = client.get("/api/v1/calls?channel=text", headers=headers).json()["items"]
        assert [(c["caller_number"], c["turns"]) for c in texts] == [("web-1", 1)]
    assert len(settings.call_log.read_text().splitlines()) == 9  # the JSON-lines log is still written


def test_db_upgrade_and_api_keys_on_the_command_line(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"CALLPILOT_STATE_DIR": str(tmp_path)}
    upgraded = runner.invoke(cli, ["db", "upgrade"], env=env)
    assert upgraded.exit_code == 0 and "revision 0004" in upgraded.output
    assert (tmp_path / "callpilot.db").exists()
    assert runner.invoke(cli, ["db", "upgrade"], env=env).exit_code == 0  # again: nothing to do

    created = runner.invoke(cli, ["apikey", "create", "--role", "trainer", "--name", "nlu team"], env=env)
    key = created.stdout.strip().splitlines()[0]
    assert created.exit_code == 0 and key.startswith("cp_")
    key_id = key.split("_")[1]
    listed = runner.invoke(cli, ["apikey", "list"], env=env)
    assert key_id in listed.output and "trainer" in listed.output and "active" in listed.output
    assert key not in listed.output  # the secret is never shown again

    assert runner.invoke(cli, ["apikey", "revoke", key_id], env=env).exit_code == 0
    assert "revoked" in runner.invoke(cli, ["apikey", "list"], env=env).output
    missing = runner.invoke(cli, ["apikey", "revoke", "nope"], env=env)
    assert missing.exit_code == 1 and "no key 'nope'" in missing.output
    bad_role = runner.invoke(cli, ["apikey", "create", "--role", "boss"], env=env)
    assert bad_role.exit_code == 2 and "unknown role 'boss'" in bad_role.output
    # An agent key names its agent: it sees that agent's calls only.
    no_agent = runner.invoke(cli, ["apikey", "create", "--role", "agent"], env=env)
    assert no_agent.exit_code == 2 and "--agent AGENT_ID" in no_agent.output
    agent = runner.invoke(cli, ["apikey", "create", "--role", "agent", "--agent", "ann-lee"], env=env)
    assert agent.exit_code == 0 and "(agent ann-lee)" in runner.invoke(cli, ["apikey", "list"], env=env).output


def test_the_server_starts_while_the_database_is_down_and_catches_up(pg_schema_url: str, tmp_path: Path) -> None:  # noqa: F811
    proxy = FlakyProxy(5432)  # down: every connection is dropped
    database = Database(pg_schema_url.replace(":5432/", f":{proxy.port}/"))
    runtime = RecordsRuntime(Settings.load(None, {}, state_dir=tmp_path), database=database)

    async def scenario() -> None:
        await runtime.start()  # returns although the upgrade failed
        assert not runtime.ready.is_set()
        start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
        runtime.writer.submit(RecordEvent("down-1", "started", start, {"caller": "+16175550142"}))
        runtime.writer.submit(RecordEvent("down-1", "ended", start + timedelta(seconds=30), {"reason": "hangup"}))
        proxy.up.set()
        await asyncio.wait_for(runtime.ready.wait(), 60)
        assert await asyncio.to_thread(runtime.writer.flush, 30)
        await runtime.stop()

    try:
        asyncio.run(scenario())
    finally:
        proxy.close()
    direct = Database(pg_schema_url)
    with direct.session() as session:
        row = session.scalar(select(CallRecord).where(CallRecord.call_id == "down-1"))
        assert row is not None and row.duration_s == 30.0 and row.customer_id == "C001"
    direct.dispose()
