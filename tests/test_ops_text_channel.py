"""A REST-channel conversation counts like a call: call.started / call.ended webhooks (transport "text"),
Prometheus counters, and a record that the server ends by itself once the conversation is idle."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.nlu import NLUEngine
from callpilot.app import create_app
from callpilot.records.apikeys import create_key
from callpilot.records.models import CallRecord
from callpilot.settings import Settings
from tests.webhook_receiver import Receiver

ROOT = Path(__file__).resolve().parent.parent
SECRET = "text-channel-secret"


@pytest.fixture
def hooks() -> Iterator[Receiver]:
    with Receiver(SECRET) as made:
        yield made


def metric(text: str, sample: str) -> float:
    """The value of one sample (`name` or `name{labels}`) in Prometheus' text format."""
    [value] = [line.rsplit(" ", 1)[1] for line in text.splitlines() if line.rsplit(" ", 1)[0] == sample]
    return float(value)


def test_a_rest_conversation_is_started_counted_and_ended_when_idle(
    tmp_path: Path, nlu_engine: NLUEngine, hooks: Receiver
) -> None:
    settings = Settings.load(None, {}, data_dir=ROOT / "nlu_data", state_dir=tmp_path, audiosocket_port=0,
                             call_log=tmp_path / "calls.jsonl",
                             webhooks=[{"url": hooks.url, "secret": SECRET, "events": ["call.started", "call.ended"]}])
    app = create_app(settings, engine=nlu_engine)
    app.state.voice.start_loading = lambda: None
    records = app.state.records
    records.text.idle = timedelta(seconds=0.5)  # the session lifetime, short for the test
    records.text_sweep_s = 0.1

    with TestClient(app) as client:
        replies = client.post("/webhooks/rest/webhook", json={"sender": "web-7", "message": "hello"})
        assert replies.status_code == 200 and replies.json()
        started = hooks.wait_for_event("call.started")["data"]
        assert (started["transport"], started["caller"]) == ("text", "web-7")
        scraped = client.get("/metrics").text
        assert metric(scraped, 'callpilot_calls_started_total{transport="text"}') == 1.0
        assert metric(scraped, "callpilot_text_conversations_open") == 1.0
        assert metric(scraped, "callpilot_calls_in_progress") == 0.0  # phone calls only

        # Nobody writes again: the server's sweep ends the conversation.
        ended = hooks.wait_for_event("call.ended")["data"]
        assert ended == {"call_id": started["call_id"], "reason": "idle", "at": ended["at"]}
        scraped = client.get("/metrics").text
        assert metric(scraped, "callpilot_text_conversations_open") == 0.0
        assert metric(scraped, 'callpilot_calls_ended_total{reason="idle"}') == 1.0
        assert records.writer.flush(30)
        with records.database.session() as session:
            row = session.scalar(select(CallRecord).where(CallRecord.call_id == started["call_id"]))
        assert row is not None and (row.channel, row.status, row.end_reason) == ("text", "completed", "idle")

        # The KPIs keep chats apart from phone calls: `channel=text` counts them, the default (phone) does not.
        with records.database.session() as session:
            headers = {"Authorization": f"Bearer {create_key(session, 'supervisor', 'wallboard')}"}
        phone = client.get("/api/v1/kpis", headers=headers).json()
        text = client.get("/api/v1/kpis?channel=text", headers=headers).json()
        assert (phone["channel"], phone["kpis"]["calls"]) == ("phone", 0)
        assert (text["channel"], text["kpis"]["calls"], text["kpis"]["containment_rate"]) == ("text", 1, 1.0)
        wrong = client.get("/api/v1/kpis?channel=fax", headers=headers)
        assert wrong.status_code == 400 and "expected one of phone, voice, api, text, all" in wrong.json()["detail"]
