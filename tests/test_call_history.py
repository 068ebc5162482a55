"""The call history pages (`/calls`, `/calls/{id}`) over real records on SQLite and PostgreSQL: search by
number, date, outcome, intent, queue, agent, language and length; paging; CSV export; a call's timeline,
transcript, note, ticket and recording; agents see only their own calls; every read is audited."""

from __future__ import annotations

import csv
import io
import re
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from callpilot.app import create_app
from callpilot.ops.history import CallSearch, SearchError
from callpilot.records.apikeys import create_key
from callpilot.records.db import Database
from callpilot.records.models import AuditEntry, CallRecord
from callpilot.records.projection import RecordEvent
from callpilot.records.writer import store_events
from callpilot.settings import Settings
from tests.records_fixtures import database, pg_schema_url  # noqa: F401 - SQLite and PostgreSQL

pytestmark = pytest.mark.anyio
START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def call(call_id: str, start: datetime, caller: str, *, intent: str, handoff: str | None = None,
         agent: str | None = None, language: str = "en",
         recording: Path | None = None, length_s: int = 60) -> list[RecordEvent]:
    events = [
        RecordEvent(call_id, "started", start, {"transport": "twilio", "caller": caller, "language": language}),
        RecordEvent(call_id, "turn", start + timedelta(seconds=4), {"speaker": "bot", "text": "Hello, Brightline."}),
        RecordEvent(call_id, "turn", start + timedelta(seconds=8),
                    {"speaker": "caller", "text": f"something about {intent}", "intent": intent,
                     "intent_confidence": 0.91}),
    ]
    end = start + timedelta(seconds=length_s)
    if handoff:
        events.append(RecordEvent(call_id, "handoff", start + timedelta(seconds=12),
                                  {"reason": "caller_asked", "skill": handoff, "caller_number": caller,
                                   "summary": "Caller needs help with where order 48215 is."}))
    if agent:
        events.append(RecordEvent(call_id, "agent_connected", start + timedelta(seconds=30),
                                  {"agent_id": agent, "agent_name": agent.title()}))
    ended = {"reason": "hangup", **({"recording": str(recording)} if recording is not None else {})}
    events.append(RecordEvent(call_id, "ended", end, ended))
    if agent:
        events.append(RecordEvent(call_id, "wrap_up", end + timedelta(seconds=5),
                                  {"agent_id": agent, "disposition": "resolved", "notes": "told the caller"}))
    return events


def write_wav(path: Path) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(bytes(8000 * 4))
    return path


@dataclass
class Site:
    client: httpx.AsyncClient
    supervisor: str
    agent: str
    database: Database


@pytest.fixture
async def site(tmp_path: Path, database: Database) -> AsyncIterator[Site]:  # noqa: F811
    wav = write_wav(tmp_path / "c1.wav")
    events = [
        *call("c1", START, "+16175550142", intent="check_order_status", handoff="orders", agent="ann",
              recording=wav),
        *call("c2", START + timedelta(hours=1), "+16175550187", intent="opening_hours", length_s=20),
        *call("c3", START + timedelta(days=1), "+13125550147", intent="cancel_order", handoff="orders",
              agent="bob", language="zh", length_s=200),
        *call("c4", START + timedelta(days=1, hours=1), "+13125550118", intent="complaint", handoff="general"),
        *[e for i in range(30) for e in call(f"bulk{i}", START - timedelta(days=3, minutes=i), "+15550100000",
                                               intent="store_location", length_s=30)],
    ]
    with database.session() as session:
        store_events(session, events, retention_days=90)
        supervisor = create_key(session, "supervisor", "sue")
        agent = create_key(session, "agent", "ann", agent_id="ann")
    app = create_app(Settings(data_dir=tmp_path, state_dir=tmp_path, call_log=tmp_path / "calls.jsonl"), database=database)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield Site(client, supervisor, agent, database)


def total(html: str) -> int:
    found = re.search(r'<span id="total">(\d+)</span>', html)
    assert found, html[-2000:]
    return int(found.group(1))


def listed(html: str) -> list[str]:
    return re.findall(r'<tr data-call="([^"]+)"', html)


async def sign_in(site: Site, key: str) -> None:
    done = await site.client.post("/calls/login", content=f"key={key}",
                                  headers={"content-type": "application/x-www-form-urlencoded"})
    assert done.status_code == 303, done.text
    assert "path=/calls" in done.headers["set-cookie"].lower() and "httponly" in done.headers["set-cookie"].lower()


async def test_searching_the_history_by_number_date_outcome_intent_and_length(site: Site) -> None:
    assert "Sign in" in (await site.client.get("/calls")).text
    await sign_in(site, site.supervisor)
    page = await site.client.get("/calls")
    assert page.status_code == 200 and total(page.text) == 34 and "page 1 of 2" in page.text
    assert listed(page.text)[:4] == ["c4", "c3", "c2", "c1"]  # newest first
    assert len(listed((await site.client.get("/calls?page=2")).text)) == 9

    async def found(query: str) -> list[str]:
        reply = await site.client.get(f"/calls?{query}")
        assert reply.status_code == 200, reply.text
        return listed(reply.text)

    assert await found("caller=%2B16175550142") == ["c1"]
    assert await found("caller=(617)%20555-0187") == ["c2"]  # written as people write numbers
    assert await found("start=2026-12-01&end=2026-12-01") == ["c2", "c1"]  # a date alone: the whole day
    assert await found("outcome=contained&start=2026-12-01") == ["c2"]
    assert sorted(await found("outcome=handed_over")) == ["c1", "c3"]
    assert await found("outcome=abandoned") == ["c4"]  # the caller hung up in the queue
    assert await found("intent=cancel_order") == ["c3"]
    assert await found("language=zh") == ["c3"]
    assert await found("min_s=100") == ["c3"]
    assert await found("queue=orders&agent=ann") == ["c1"]
    bad = await site.client.get("/calls?outcome=maybe")
    assert bad.status_code == 400 and "expected one of contained" in bad.text
    assert (await site.client.get("/calls?start=yesterday")).status_code == 400


async def test_a_calls_page_shows_its_timeline_note_ticket_and_plays_its_recording(site: Site) -> None:
    await sign_in(site, site.supervisor)
    page = await site.client.get("/calls/c1")
    assert page.status_code == 200, page.text
    html = page.text
    assert "+16175550142" in html and "where order 48215 is" in html  # the agent's note
    assert "something about check_order_status" in html and "check order status (0.91)" in html
    assert "handed over" in html and "agent answered" in html and "resolved - told the caller" in html
    assert 'id="recording"' in html and 'src="/calls/c1/recording.wav"' in html
    assert 'id="ticket"' in html
    audio = await site.client.get("/calls/c1/recording.wav")
    assert audio.status_code == 200 and audio.content[:4] == b"RIFF"
    assert "not recorded" in (await site.client.get("/calls/c2")).text
    assert (await site.client.get("/calls/c2/recording.wav")).status_code == 404
    assert (await site.client.get("/calls/nope")).status_code == 404
    with site.database.session() as session:
        actions = [(a.action, a.target) for a in session.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert ("call.view", "c1") in actions and ("recording.play", "c1") in actions


async def test_an_agent_sees_only_their_calls_and_no_recordings(site: Site) -> None:
    await sign_in(site, site.agent)
    page = await site.client.get("/calls")
    assert listed(page.text) == ["c1"] and total(page.text) == 1
    assert (await site.client.get("/calls/c3")).status_code == 404  # another agent's call does not exist
    own = await site.client.get("/calls/c1")
    assert own.status_code == 200 and "Recordings are for supervisors" in own.text
    assert (await site.client.get("/calls/c1/recording.wav")).status_code == 403


async def test_the_export_is_the_search_as_csv_and_is_audited(site: Site) -> None:
    assert (await site.client.get("/calls/export.csv")).status_code == 401
    await sign_in(site, site.supervisor)
    reply = await site.client.get("/calls/export.csv?outcome=handed_over")
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(reply.text)))
    assert sorted(r["call_id"] for r in rows) == ["c1", "c3"]
    assert {r["outcome"] for r in rows} == {"handed over"} and rows[0]["queue"] == "orders"
    with site.database.session() as session:
        exports = session.scalars(select(AuditEntry).where(AuditEntry.action == "calls.export")).all()
        assert exports and exports[0].detail["rows"] == 2 and exports[0].actor.startswith("apikey:")
        assert session.scalar(select(CallRecord.agent_id).where(CallRecord.call_id == "c1")) == "ann"


async def test_bad_search_values_get_a_clear_error() -> None:
    with pytest.raises(SearchError, match="unknown search field colour"):
        CallSearch.from_query({"colour": "red"})
    with pytest.raises(SearchError, match="page='x'"):
        CallSearch.from_query({"page": "x"})
    with pytest.raises(SearchError, match="min_s='-3'"):
        CallSearch.from_query({"min_s": "-3"})
    assert CallSearch.from_query({"caller": " +1 617 ", "page": "0"}).page == 1
