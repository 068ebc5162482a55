"""The /api/v1 records API: every route family refuses a missing key (401) and a wrong role (403)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from callpilot.records.apikeys import create_key, revoke_key
from callpilot.records.db import Database
from callpilot.records.models import AuditEntry
from callpilot.records.projection import RecordEvent
from callpilot.records.runtime import RecordsRuntime, mount_records
from callpilot.records.writer import store_events
from callpilot.settings import Settings
from handoff.model import AgentView, HandoffState, QueuedCall, QueueView, SupervisorView
from tests.records_fixtures import database, pg_schema_url  # noqa: F401

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ROLES = ("admin", "supervisor", "agent", "trainer")


class Api:
    """A test client plus one API key per role."""

    def __init__(self, client: TestClient, keys: dict[str, str], app: FastAPI) -> None:
        self.client, self.keys, self.app = client, keys, app

    def as_(self, role: str | None, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.keys[role]}"} if role else {}
        return self.client.request(method, path, headers=headers, **kwargs)


def _events(call_id: str, start: datetime, *, caller: str, handoff: str | None = None, agent: str | None = None,
            disposition: str | None = None, recording: str | None = None) -> list[RecordEvent]:
    events = [RecordEvent(call_id, "started", start, {"transport": "twilio", "caller": caller}),
              RecordEvent(call_id, "turn", start + timedelta(seconds=2),
                          {"speaker": "caller", "text": "my email is sam@example.org, order 48215"})]
    at = start + timedelta(seconds=10)
    if handoff:
        events.append(RecordEvent(call_id, "handoff", at, {"reason": "caller_asked", "skill": handoff}))
    if agent:
        events.append(RecordEvent(call_id, "agent_connected", at + timedelta(seconds=30), {"agent_id": agent}))
    events.append(RecordEvent(call_id, "ended", at + timedelta(seconds=90),
                              {"reason": "caller_hangup", "recording": recording}))
    if disposition:
        events.append(RecordEvent(call_id, "wrap_up", at + timedelta(seconds=100), {"disposition": disposition}))
    return events


@pytest.fixture
def api(database: Database, tmp_path: Path) -> Iterator[Api]:  # noqa: F811
    wav = tmp_path / "rec-1.wav"
    wav.write_bytes(b"RIFF....WAVEfmt fake but real bytes")
    with database.session() as session:
        keys = {role: create_key(session, role, f"test {role}", agent_id="a7" if role == "agent" else None)
                for role in ROLES}
        keys["other agent"] = create_key(session, "agent", "test b9", agent_id="b9")
        revoked = create_key(session, "admin", "old")
        revoke_key(session, revoked.split("_")[1])
        keys["revoked"] = revoked
        keys["garbage"] = "cp_nope_nope"
        store_events(session, _events("bot-1", T0, caller="+16175550142"), retention_days=90)
        store_events(session, _events("hand-1", T0 + timedelta(hours=1), caller="+16175550187", handoff="orders",
                                      agent="a7", disposition="refund_issued", recording=str(wav)), retention_days=90)
        store_events(session, _events("hand-2", T0 + timedelta(days=1), caller="+16175550142", handoff="tech"),
                     retention_days=90)
    app = FastAPI()
    mount_records(app, RecordsRuntime(Settings.load(None, {}, state_dir=tmp_path), database))
    with TestClient(app) as client:
        yield Api(client, keys, app)


# Who may do what: (method, path, roles allowed besides admin, body)
ROUTES = [
    ("GET", "/api/v1/calls", {"supervisor", "agent"}, None),
    ("GET", "/api/v1/calls/hand-1", {"supervisor", "agent"}, None),
    ("POST", "/api/v1/calls", {"supervisor"},
     {"customer_id": "C001", "phone_number": "+16175550142", "call_duration": 60, "status": "completed"}),
    ("GET", "/api/v1/calls/bot-1/transcript", {"supervisor", "trainer"}, None),
    ("GET", "/api/v1/calls/hand-1/recording", {"supervisor"}, None),
    ("PUT", "/api/v1/calls/hand-1/retention", {"supervisor"}, {"retention_days": 30}),
    ("GET", "/api/v1/agents", {"supervisor"}, None),
    ("GET", "/api/v1/queues", {"supervisor"}, None),
    ("GET", "/api/v1/contacts?phone=%2B16175550187", {"supervisor", "agent"}, None),
    ("GET", "/api/v1/tickets", {"supervisor", "agent"}, None),
    ("GET", "/api/v1/audit", set(), None),
]


@pytest.mark.parametrize(("method", "path", "allowed", "body"), ROUTES, ids=[f"{m} {p}" for m, p, _, _ in ROUTES])
def test_every_route_checks_the_key_and_the_role(api: Api, method: str, path: str, allowed: set[str],
                                                 body: dict[str, Any] | None) -> None:
    missing = api.as_(None, method, path, json=body)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert "missing API key" in missing.json()["detail"]
    for bad in ("revoked", "garbage"):
        assert api.as_(bad, method, path, json=body).status_code == 401
    wrong_scheme = api.client.request(method, path, headers={"Authorization": f"Basic {api.keys['admin']}"}, json=body)
    assert wrong_scheme.status_code == 401
    for role in ROLES:
        response = api.as_(role, method, path, json=body)
        if role == "admin" or role in allowed:
            assert response.status_code in (200, 201), (role, response.text)
        else:
            assert response.status_code == 403, (role, response.text)
            assert f"role '{role}' may not do this" in response.json()["detail"]


def test_calls_are_listed_newest_first_with_filters_and_a_total(api: Api) -> None:
    page = api.as_("supervisor", "GET", "/api/v1/calls").json()
    assert page["total"] == 3 and [c["call_id"] for c in page["items"]] == ["hand-2", "hand-1", "bot-1"]

    def ids(query: str) -> tuple[int, list[str]]:
        body = api.as_("supervisor", "GET", f"/api/v1/calls?{query}").json()
        return body["total"], [c["call_id"] for c in body["items"]]

    assert ids("contained=true") == (1, ["bot-1"])
    assert ids("contained=false") == (2, ["hand-2", "hand-1"])
    assert ids("queue=orders") == (1, ["hand-1"])
    assert ids("agent=a7&disposition=refund_issued") == (1, ["hand-1"])
    assert ids("caller=%2B1%20617%20555%200142") == (2, ["hand-2", "bot-1"])  # any written form of the number
    assert ids("from=2026-03-02T09:30:00Z&to=2026-03-03T00:00:00Z") == (1, ["hand-1"])
    assert ids("from=2026-03-02T09:30:00") == (2, ["hand-2", "hand-1"])  # no zone: UTC
    assert ids("limit=1&offset=1") == (3, ["hand-1"])
    assert ids("limit=2&offset=2") == (3, ["bot-1"])


def test_one_call_has_handoff_details_and_no_transcript(api: Api) -> None:
    call = api.as_("agent", "GET", "/api/v1/calls/hand-1").json()
    assert (call["queue"], call["agent_id"], call["wait_s"], call["disposition"]) == ("orders", "a7", 30.0, "refund_issued")
    assert call["customer_id"] == "C002" and call["contained"] is False and call["recording_available"] is True
    assert "transcript" not in call and "recording_path" not in call
    assert api.as_("agent", "GET", "/api/v1/calls/nope").status_code == 404


def test_transcripts_are_redacted(api: Api) -> None:
    body = api.as_("trainer", "GET", "/api/v1/calls/bot-1/transcript").json()
    assert body["redacted"] is True
    assert [line["text"] for line in body["lines"]] == ["my email is [email], order 48215"]


def test_integrators_create_calls_in_their_own_shape(api: Api) -> None:
    sent = {"customer_id": "C009", "phone_number": "(617) 555-0199", "call_duration": 184.5, "status": "completed"}
    created = api.as_("supervisor", "POST", "/api/v1/calls", json=sent)
    assert created.status_code == 201
    call = created.json()
    assert (call["channel"], call["customer_id"], call["caller_number"]) == ("api", "C009", "+16175550199")
    assert call["duration_s"] == 184.5 and call["status"] == "completed"
    ended = datetime.fromisoformat(call["ended_at"])
    assert ended - datetime.fromisoformat(call["started_at"]) == timedelta(seconds=184.5)
    assert api.as_("supervisor", "GET", f"/api/v1/calls/{call['call_id']}").json()["customer_id"] == "C009"
    tickets = api.as_("supervisor", "GET", f"/api/v1/tickets?call_id={call['call_id']}").json()
    assert len(tickets) == 1 and tickets[0]["customer_id"] == "C009"
    assert "handed" not in tickets[0]["subject"] and "completed" in tickets[0]["subject"]  # no agent was involved
    # reads return the shape that was posted, beside callpilot's own names
    read = api.as_("supervisor", "GET", f"/api/v1/calls/{call['call_id']}").json()
    assert {k: read[k] for k in sent} == {**sent, "phone_number": "+16175550199"}
    assert (read["caller_number"], read["duration_s"]) == ("+16175550199", 184.5)

    again = {**sent, "call_id": "ext-77", "started_at": "2026-03-05T10:00:00Z"}
    assert api.as_("supervisor", "POST", "/api/v1/calls", json=again).status_code == 201
    duplicate = api.as_("supervisor", "POST", "/api/v1/calls", json=again)
    assert duplicate.status_code == 409 and "already exists" in duplicate.json()["detail"]


def test_calls_filter_by_status_and_refuse_unknown_filters(api: Api) -> None:
    for n, status in enumerate(("completed", "abandoned", "abandoned")):
        sent = {"customer_id": f"C10{n}", "phone_number": "+16175550199", "call_duration": 30, "status": status}
        assert api.as_("supervisor", "POST", "/api/v1/calls", json=sent).status_code == 201
    abandoned = api.as_("supervisor", "GET", "/api/v1/calls?status=abandoned&channel=api").json()
    assert abandoned["total"] == 2 and {c["status"] for c in abandoned["items"]} == {"abandoned"}
    assert api.as_("supervisor", "GET", "/api/v1/calls?customer_id=C100").json()["total"] == 1
    assert api.as_("agent", "GET", "/api/v1/calls?customer_id=C100").json()["total"] == 0  # not their call
    assert api.as_("agent", "GET", "/api/v1/calls?status=lost").status_code == 422
    typo = api.as_("agent", "GET", "/api/v1/calls?stauts=abandoned")
    assert typo.status_code == 400 and "unknown query parameter stauts" in typo.json()["detail"]
    assert "status" in typo.json()["detail"]  # it names the filters it takes
    assert api.as_("agent", "GET", "/api/v1/tickets?state=open").status_code == 400


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"phone_number": "call me maybe"}, "phone_number", "E.164"),
        ({"phone_number": "+0123"}, "phone_number", "E.164"),
        ({"call_duration": -5}, "call_duration", "greater than or equal to 0"),
        ({"call_duration": "long"}, "call_duration", "valid number"),
        ({"status": "done"}, "status", "'completed'"),
        ({"customer_id": ""}, "customer_id", "at least 1 character"),
        ({"customer_id": None}, "customer_id", "valid string"),
        ({"colour": "blue"}, "colour", "Extra inputs are not permitted"),
        ({"call_id": "has spaces"}, "call_id", "pattern"),
    ],
)
def test_bad_calls_get_a_clear_422(api: Api, change: dict[str, Any], field: str, message: str) -> None:
    body = {"customer_id": "C001", "phone_number": "+16175550142", "call_duration": 60, "status": "completed", **change}
    response = api.as_("supervisor", "POST", "/api/v1/calls", json=body)
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert any(e["loc"][-1] == field and message in e["msg"] for e in errors), errors


def test_a_missing_field_is_named(api: Api) -> None:
    response = api.as_("supervisor", "POST", "/api/v1/calls", json={"customer_id": "C001", "status": "completed"})
    assert response.status_code == 422
    assert {e["loc"][-1] for e in response.json()["detail"]} == {"phone_number", "call_duration"}


def test_recordings_download_for_supervisors_and_each_download_is_audited(api: Api, database: Database) -> None:  # noqa: F811
    response = api.as_("supervisor", "GET", "/api/v1/calls/hand-1/recording")
    assert response.status_code == 200 and response.content == b"RIFF....WAVEfmt fake but real bytes"
    assert response.headers["content-type"] == "audio/wav"
    assert api.as_("supervisor", "GET", "/api/v1/calls/bot-1/recording").status_code == 404
    with database.session() as session:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.action == "recording.download")).all()
        assert [(e.target, e.actor) for e in entries] == [("hand-1", f"apikey:{api.keys['supervisor'].split('_')[1]}")]
    audit = api.as_("admin", "GET", "/api/v1/audit?action=recording.download").json()
    assert [a["target"] for a in audit] == ["hand-1"]


def test_retention_beyond_180_days_needs_consent(api: Api) -> None:
    refused = api.as_("supervisor", "PUT", "/api/v1/calls/hand-1/retention", json={"retention_days": 365})
    assert refused.status_code == 422 and "needs the caller's recorded consent" in refused.json()["detail"]
    odd = api.as_("supervisor", "PUT", "/api/v1/calls/hand-1/retention", json={"retention_days": 60})
    assert odd.status_code == 422 and "30, 90, 180" in odd.json()["detail"]
    kept = api.as_("supervisor", "PUT", "/api/v1/calls/hand-1/retention", json={"retention_days": 365, "consent": True})
    assert kept.status_code == 200
    call = kept.json()
    assert (call["retention_days"], call["recording_consent"]) == (365, True)
    assert datetime.fromisoformat(call["recording_expires_at"]) == datetime.fromisoformat(call["ended_at"]) + timedelta(days=365)


def test_agents_and_queues_come_from_the_handoff_service(api: Api) -> None:
    assert api.as_("supervisor", "GET", "/api/v1/agents").json() == {"items": []}  # no handoff service running
    assert api.as_("supervisor", "GET", "/api/v1/queues").json() == {"items": []}
    api.app.state.handoff = SimpleNamespace(service=None)  # the handoff runtime when Redis was unreachable
    assert api.as_("supervisor", "GET", "/api/v1/agents").json() == {"items": []}

    class Floor:
        async def snapshot(self) -> SupervisorView:
            return SupervisorView(
                at=T0.timestamp(),
                queues=(QueueView("orders", True, "longest_idle", (), 0.0, 1, 2),),
                agents=(AgentView("a7", "Maria", {"orders": 3}, "available", T0.timestamp(), True),),  # type: ignore[arg-type]
                live_calls=(),
            )

    api.app.state.handoff = Floor()
    agents = api.as_("supervisor", "GET", "/api/v1/agents").json()["items"]
    queues = api.as_("supervisor", "GET", "/api/v1/queues").json()["items"]
    assert [(a["agent_id"], a["name"], a["skills"]) for a in agents] == [("a7", "Maria", {"orders": 3})]
    assert [(q["name"], q["agents_available"], q["agents_logged_in"]) for q in queues] == [("orders", 1, 2)]


def test_contacts_are_looked_up_by_number(api: Api) -> None:
    found = api.as_("supervisor", "GET", "/api/v1/contacts?phone=617-555-0142").json()
    assert (found["contact_id"], found["name"], found["source"]) == ("C001", "Sarah Miller", "sql")
    assert api.as_("supervisor", "GET", "/api/v1/contacts?phone=%2B19995550000").status_code == 404


def test_an_agent_key_sees_only_its_own_calls_and_tickets(api: Api) -> None:
    page = api.as_("agent", "GET", "/api/v1/calls").json()
    assert (page["total"], [c["call_id"] for c in page["items"]]) == (1, ["hand-1"])
    assert api.as_("agent", "GET", "/api/v1/calls?caller=%2B16175550142").json()["total"] == 0
    assert api.as_("agent", "GET", "/api/v1/calls/bot-1").status_code == 404  # another's call: not even there
    assert api.as_("other agent", "GET", "/api/v1/calls/hand-1").status_code == 404
    assert api.as_("other agent", "GET", "/api/v1/calls").json()["total"] == 0
    assert {t["call_id"] for t in api.as_("agent", "GET", "/api/v1/tickets").json()} == {"hand-1"}
    assert api.as_("other agent", "GET", "/api/v1/tickets").json() == []
    assert len(api.as_("supervisor", "GET", "/api/v1/tickets").json()) == 3


def test_an_agent_key_sees_only_the_contacts_of_its_callers(api: Api) -> None:
    # Sarah (+16175550142) called twice, never to agent a7: no lookup of her for a7's key.
    refused = api.as_("agent", "GET", "/api/v1/contacts?phone=617-555-0142")
    assert refused.status_code == 403 and "offered to or taken by" in refused.json()["detail"]
    # a7 took hand-1 from +16175550187 (any written form of the number).
    assert api.as_("agent", "GET", "/api/v1/contacts?phone=617.555.0187").json()["contact_id"]
    assert api.as_("other agent", "GET", "/api/v1/contacts?phone=%2B16175550187").status_code == 403

    class Floor:  # now Sarah's call rings at a7
        async def snapshot(self) -> SupervisorView:
            waiting = QueuedCall("live-9", "orders", 3, HandoffState.OFFERED, 1, 0.0, T0.timestamp(), 4.0,
                                 "+16175550142", "a7")
            return SupervisorView(T0.timestamp(), (QueueView("orders", True, "longest_idle", (waiting,), 4.0, 0, 1),),
                                  (), ())

    api.app.state.handoff = Floor()
    found = api.as_("agent", "GET", "/api/v1/contacts?phone=%2B16175550142").json()
    assert found["name"] == "Sarah Miller"
    assert api.as_("other agent", "GET", "/api/v1/contacts?phone=%2B16175550142").status_code == 403


def test_the_openapi_page_lists_the_routes_and_the_bearer_scheme(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    assert {"/api/v1/calls", "/api/v1/calls/{call_id}", "/api/v1/calls/{call_id}/recording"} <= set(spec["paths"])
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["type"] == "http"
    assert api.client.get("/docs").status_code == 200
