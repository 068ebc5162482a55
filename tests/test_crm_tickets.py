"""A call's ticket goes to the CRM when the settings say so: as signed webhooks, or POSTed to {crm_url}/tickets
with retries; always kept in the tickets table. Against a real local receiver."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot.nlu import NLUEngine
from callpilot.app import create_app
from callpilot.records.models import Ticket
from callpilot.settings import Settings, SettingsError
from tests.webhook_receiver import Receiver
from voice_gateway.call_log import CallLog, LifecycleKind

ROOT = Path(__file__).resolve().parent.parent
SECRET = "crm-shared-secret"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """The CRM's endpoint: 201 for a ticket, 503 while it is unavailable."""
    with Receiver(SECRET, fail_status=503, ok_status=201) as made:
        yield made


def server(tmp_path: Path, nlu_engine: NLUEngine, **settings: Any) -> TestClient:
    config = Settings.load(None, {}, data_dir=ROOT / "nlu_data", state_dir=tmp_path,
                           database_url=f"sqlite:///{tmp_path / 'rec.db'}", audiosocket_port=0,
                           call_log=tmp_path / "calls.jsonl", **settings)
    app = create_app(config, engine=nlu_engine)
    app.state.voice.start_loading = lambda: None  # records and tickets only
    return TestClient(app)


def simulate_call(client: TestClient, call_id: str) -> None:
    """A call the bot handled, through the call log with the app's listeners (what the voice gateway does)."""
    call_log = CallLog(None)
    for listener in client.app.state.voice.call_log_listeners:  # type: ignore[attr-defined]
        call_log.subscribe(listener)
    call_log.record(call_id, LifecycleKind.STARTED, 0, transport="twilio", caller="+16175550142")
    call_log.record(call_id, LifecycleKind.TURN, 900, speaker="caller", text="where is my order 48215",
                    intent="check_order_status", intent_confidence=0.93)
    call_log.record(call_id, LifecycleKind.ENDED, 5000, reason="caller_hangup")


def test_tickets_go_out_as_signed_webhooks(tmp_path: Path, nlu_engine: NLUEngine, receiver: Receiver) -> None:
    hook = {"url": f"{receiver.base}/hooks/tickets", "secret": SECRET, "events": ["ticket.created", "ticket.updated"]}
    with server(tmp_path, nlu_engine, ticket_delivery="webhook", webhooks=[hook]) as client:
        simulate_call(client, "t-1")
        [created] = receiver.wait_for(1)
        assert (created["path"], created["event"], created["valid"]) == ("/hooks/tickets", "ticket.created", True)
        ticket = created["body"]["data"]
        assert (ticket["call_id"], ticket["customer_id"], ticket["caller_number"]) == ("t-1", "C001", "+16175550142")
        assert "resolved by the bot" in ticket["subject"] and ticket["call"]["intents"] == ["check_order_status"]
        assert isinstance(ticket["ticket_id"], int)

        # The agent's wrap-up after the call ended updates the ticket, and the CRM hears of it.
        client.app.state.records.writer.record_wrap_up(  # type: ignore[attr-defined]
            {"kind": "wrap_up", "call_id": "t-1", "agent_id": "a1", "disposition": "follow_up", "notes": "ring back"})
        updated = receiver.wait_for(2)[1]
        assert (updated["event"], updated["valid"]) == ("ticket.updated", True)
        assert updated["body"]["data"]["ticket_id"] == ticket["ticket_id"]
        assert "follow_up" in updated["body"]["data"]["subject"] and "Notes: ring back" in updated["body"]["data"]["body"]


def test_tickets_are_posted_to_the_crm_and_retried_until_it_accepts(
    tmp_path: Path, nlu_engine: NLUEngine, receiver: Receiver
) -> None:
    receiver.fail_first = 1  # the CRM is briefly unavailable
    with server(tmp_path, nlu_engine, ticket_delivery="crm", crm_url=receiver.base, crm_secret=SECRET) as client:
        simulate_call(client, "t-2")
        first, second = receiver.wait_for(2)
        assert first["path"] == second["path"] == "/tickets"
        assert first["delivery"] == second["delivery"] and first["body"] == second["body"]  # the same ticket again
        assert second["valid"] and second["body"]["data"]["call_id"] == "t-2"
        ops = client.app.state.ops  # type: ignore[attr-defined]
        assert client.portal is not None
        client.portal.call(ops.tickets.drain)
        tickets = ops.tickets.crm.log
        assert [(d.status, d.delivered) for d in tickets] == [(503, False), (201, True)]


def test_without_a_delivery_setting_tickets_stay_in_the_table(
    tmp_path: Path, nlu_engine: NLUEngine, receiver: Receiver
) -> None:
    hook = {"url": f"{receiver.base}/hooks/all", "secret": SECRET}  # every event, tickets included
    with server(tmp_path, nlu_engine, webhooks=[hook]) as client:
        simulate_call(client, "t-3")
        assert client.app.state.records.writer.flush(30)  # type: ignore[attr-defined]
        hooks = client.app.state.ops.hooks  # type: ignore[attr-defined]
        assert client.portal is not None
        client.portal.call(hooks.drain)
        assert [p["event"] for p in receiver.posts if p["event"].startswith("ticket.")] == []
        with client.app.state.records.database.session() as session:  # type: ignore[attr-defined]
            assert list(session.scalars(select(Ticket.call_id))) == ["t-3"]


def test_crm_tickets_are_never_sent_unsigned(
    tmp_path: Path, nlu_engine: NLUEngine, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="callpilot.ops.tickets")
    with server(tmp_path, nlu_engine, ticket_delivery="crm", crm_url=receiver.base) as client:  # no crm_secret
        assert "crm_secret (CALLPILOT_CRM_SECRET) is not set" in caplog.text  # said at start
        simulate_call(client, "t-4")
        assert client.app.state.records.writer.flush(30)  # type: ignore[attr-defined]
        deadline = time.monotonic() + 30
        while "ticket.created of ticket" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "kept in the tickets table, not sent to the CRM" in caplog.text
        with client.app.state.records.database.session() as session:  # type: ignore[attr-defined]
            assert list(session.scalars(select(Ticket.call_id))) == ["t-4"]
    assert receiver.posts == []  # nothing went out, signed with an empty key or otherwise


def test_crm_delivery_needs_the_crm_url() -> None:
    with pytest.raises(SettingsError, match=r"ticket_delivery 'crm' posts to .*crm_url"):
        Settings.load(None, {"CALLPILOT_TICKET_DELIVERY": "crm"})
