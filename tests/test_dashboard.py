"""The dashboard and /api/v1/kpis over real records (call-log events folded into SQLite) and a real queue."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from bot.dialogue.handoff import HandoffDecision
from callpilot.app import create_app
from callpilot.ops.alerts import AlertBook
from callpilot.ops.config import AlertRule
from callpilot.records.apikeys import create_key, revoke_key
from callpilot.records.db import Database
from callpilot.records.projection import RecordEvent
from callpilot.records.web_sessions import session_principal
from callpilot.records.writer import store_events
from callpilot.settings import Settings
from handoff import build_service
from handoff.model import AgentStatus
from handoff.redis_conn import Keys

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)


def at(days_ago: int, hh: int, mm: int, ss: int = 0) -> datetime:
    return (NOW - timedelta(days=days_ago)).replace(hour=hh, minute=mm, second=ss)


def bot_only(call_id: str, start: datetime, intent: str, language: str = "en") -> list[RecordEvent]:
    return [
        RecordEvent(call_id, "started", start, {"transport": "twilio", "caller": "+15550100000"}),
        RecordEvent(call_id, "turn", start + timedelta(seconds=5), {"speaker": "caller", "text": "hi", "intent": intent,
                                                                    "language": language}),
        RecordEvent(call_id, "ended", start + timedelta(minutes=2), {"reason": "hangup"}),
    ]


def to_agent(call_id: str, start: datetime, intent: str, *, wait_s: int | None, talk_s: int = 0) -> list[RecordEvent]:
    """Handed off a minute in; answered after `wait_s` (None: the caller hangs up after 60 s in the queue)."""
    offered = start + timedelta(minutes=1)
    events = [
        RecordEvent(call_id, "started", start, {"transport": "twilio", "caller": "+15550100001"}),
        RecordEvent(call_id, "turn", start + timedelta(seconds=5), {"speaker": "caller", "text": "?", "intent": intent,
                                                                    "language": "en"}),
        RecordEvent(call_id, "handoff", offered, {"reason": "asked", "skill": "orders"}),
    ]
    if wait_s is None:
        return [*events, RecordEvent(call_id, "ended", offered + timedelta(seconds=60), {"reason": "hangup"})]
    answered = offered + timedelta(seconds=wait_s)
    return [
        *events,
        RecordEvent(call_id, "agent_connected", answered, {"agent_id": "a1", "agent_name": "Ann"}),
        RecordEvent(call_id, "agent_left", answered + timedelta(seconds=talk_s), {"reason": "hangup"}),
        RecordEvent(call_id, "ended", answered + timedelta(seconds=talk_s), {"reason": "agent_hangup"}),
    ]


# Today (26 Nov, before 15:00): 3 calls.
#   t1 the bot alone; t2 answered after 12 s, talked 240 s; t3 abandoned after 60 s in the queue.
#   answer rate 1/2 = 50 %, abandonment 1/2 = 50 %, ASA 12 s, service level (20 s) 1/2 = 50 %,
#   handle time 240 s = 4.0 min, containment 1/3 = 33 %, handoff rate 2/3 = 67 %.
# Yesterday: 2 calls: y1 the bot alone; y2 answered after 30 s, talked 60 s.
# Three days ago: 1 call, the bot alone.  Eight days ago: 1 call (outside the 7 days).
#   7 days: 6 calls, offered 3, answered 2 -> 67 %; ASA (12 + 30) / 2 = 21 s; service level 1/3 = 33 %;
#   containment 3/6 = 50 %; AHT (240 + 60) / 2 = 150 s = 2.5 min.
EVENTS = [
    *bot_only("t1", at(0, 9, 0), "check_order_status", language="zh"),  # a Mandarin caller
    *to_agent("t2", at(0, 10, 0), "report_fault", wait_s=12, talk_s=240),
    *to_agent("t3", at(0, 11, 0), "report_fault", wait_s=None),
    *bot_only("y1", at(1, 12, 0), "store_hours"),
    *to_agent("y2", at(1, 13, 0), "check_order_status", wait_s=30, talk_s=60),
    *bot_only("d3", at(3, 9, 0), "check_order_status"),
    *bot_only("d8", at(8, 9, 0), "store_hours"),
]


@dataclass
class Site:
    client: httpx.AsyncClient
    supervisor: str
    agent: str
    app: object


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'records.db'}")
    db.upgrade()
    with db.session() as session:
        store_events(session, EVENTS, retention_days=90)
    yield db
    db.dispose()


@pytest.fixture
async def site(tmp_path: Path, database: Database) -> AsyncIterator[Site]:
    app = create_app(Settings(data_dir=tmp_path, state_dir=tmp_path, call_log=tmp_path / "calls.jsonl", service_level_s=20),
                     database=database)
    app.state.ops.clock = lambda: NOW
    with database.session() as session:
        supervisor, agent = create_key(session, "supervisor", "sue"), create_key(session, "agent", "ann", agent_id="ann")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield Site(client, supervisor, agent, app)


def tile(html: str, label: str) -> tuple[str, str]:
    """(today, 7 days) of the tile with this label."""
    match = re.search(rf'data-kpi="{re.escape(label)}">.*?class="today">([^<]*)<.*?7 days: ([^<]*)<', html, re.S)
    assert match, f"no tile {label!r}"
    return match.group(1).strip(), match.group(2).strip()


async def test_the_dashboard_shows_todays_and_the_weeks_figures_from_the_records(site: Site) -> None:
    page = await site.client.get("/dashboard", headers={"authorization": f"Bearer {site.supervisor}"})
    assert page.status_code == 200, page.text
    html = page.text
    assert tile(html, "Calls") == ("3", "6")
    assert tile(html, "Offered to agents") == ("2", "3")
    assert tile(html, "Answer rate") == ("50%", "67%")
    assert tile(html, "Abandonment rate") == ("50%", "33%")
    assert tile(html, "Avg speed of answer") == ("12 s", "21 s")
    assert tile(html, "Service level (20 s)") == ("50%", "33%")
    assert tile(html, "Avg handle time") == ("4.0 min", "2.5 min")
    assert tile(html, "Bot containment") == ("33%", "50%")
    assert tile(html, "Handoff rate") == ("67%", "50%")
    # The 7-day chart: one bar total per day, Fri 20 .. Thu 26: 0 0 0 1 0 2 3
    totals = re.findall(r'class="total">([^<]*)<', html)
    assert totals == ["0", "0", "0", "1", "0", "2", "3"]
    assert "<svg" in html and "Thu 26" in html
    # Hot topics: today's hours, and the week (report_fault in t2 and t3; check_order_status in t1, y2, d3)
    assert "report_fault (1)" in html
    assert re.search(r"last 7 days</th><td>Check order status \(3\), Report fault \(2\), Store hours \(1\)", html)
    # the codes themselves only in the details view
    assert re.search(r"last 7 days</th><td>check_order_status \(3\), report_fault \(2\), store_hours \(1\)",
                     html.split('<details id="topic-codes">')[1])
    assert "no queue service" in html
    assert "answer_rate_low" in html  # the default alert rules are listed


async def test_live_queues_come_from_the_handoff_service(site: Site, tmp_path: Path) -> None:
    service = build_service(Settings(state_dir=tmp_path), keys=Keys(prefix=f"test-{uuid.uuid4().hex}:"))
    decision = HandoffDecision("asked", "orders", 1, "+15550100002", (), (), {}, (), "wants a human")
    ann, _ = service.directory.add("Ann", {"orders": 3})
    await service.set_status(ann.agent_id, AgentStatus.AWAY)  # signed in, on a break: the call waits
    await service.heartbeat(ann.agent_id)
    await service.request("live-1", decision)
    site.app.state.handoff.service = service  # type: ignore[attr-defined]  (as the runtime holds it once started)
    html = (await site.client.get("/dashboard", headers={"authorization": f"Bearer {site.supervisor}"})).text
    rows = dict(re.findall(r'<tr><td title="(\w+)">[^<]+</td><td>(\d+)</td>',
                           html.split('id="queues"')[1].split("</table>")[0]))
    assert rows["orders"] == "1" and all(v == "0" for k, v in rows.items() if k != "orders")
    metrics = (await site.client.get("/metrics")).text
    assert 'callpilot_queue_waiting_calls{queue="orders"} 1.0' in metrics


async def test_signing_in_with_a_key_sets_a_cookie_for_the_page(site: Site) -> None:
    anonymous = await site.client.get("/dashboard")  # a form to fill in: 200 (no console error in a browser)
    assert anonymous.status_code == 200 and 'name="key"' in anonymous.text and "Answer rate" not in anonymous.text
    refused = await site.client.post("/dashboard/login", content=f"key={site.agent}",
                                     headers={"content-type": "application/x-www-form-urlencoded"})
    assert refused.status_code == 401 and "role &#39;agent&#39; may not see it" in refused.text
    wrong = await site.client.post("/dashboard/login", content="key=cp_nope_nope",
                                   headers={"content-type": "application/x-www-form-urlencoded"})
    assert wrong.status_code == 401 and "unknown or revoked" in wrong.text
    signed_in = await site.client.post("/dashboard/login", content=f"key={site.supervisor}",
                                       headers={"content-type": "application/x-www-form-urlencoded"})
    assert signed_in.status_code == 303
    cookie = signed_in.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/dashboard" in cookie
    assert site.supervisor.split("_", 2)[2] not in cookie and "Secure" not in cookie  # a session id, not the secret
    page = await site.client.get("/dashboard")  # the client keeps the cookie
    assert page.status_code == 200 and tile(page.text, "Calls")[0] == "3"
    session_id = site.client.cookies["callpilot_dashboard"]
    await site.client.post("/dashboard/logout")
    assert 'name="key"' in (await site.client.get("/dashboard")).text  # the sign-in form again
    # Signing out ends the session on the server: a copy of the cookie no longer opens the page.
    replayed = await site.client.get("/dashboard", cookies={"callpilot_dashboard": session_id})
    assert 'name="key"' in replayed.text and 'data-kpi="Calls"' not in replayed.text


async def test_a_dashboard_session_ends_with_its_key_and_never_opens_another_page(site: Site,
                                                                                  database: Database) -> None:
    await site.client.post("/dashboard/login", content=f"key={site.supervisor}",
                           headers={"content-type": "application/x-www-form-urlencoded"})
    session_id = site.client.cookies["callpilot_dashboard"]
    assert (await site.client.get("/dashboard")).status_code == 200
    # A session id is no API key, and a dashboard session does not open the supervisor page.
    as_key = await site.client.get("/api/v1/kpis", headers={"authorization": f"Bearer {session_id}"})
    assert as_key.status_code == 401
    with database.session() as session:
        assert session_principal(session, session_id, "supervisor") is None
        revoke_key(session, site.supervisor.split("_")[1])
    assert 'name="key"' in (await site.client.get("/dashboard")).text


async def test_the_dashboard_cookie_is_secure_behind_an_https_proxy(tmp_path: Path, database: Database) -> None:
    app = create_app(Settings(data_dir=tmp_path, state_dir=tmp_path, call_log=tmp_path / "calls.jsonl",
                              public_url="https://callpilot.example.com"), database=database)
    with database.session() as session:
        key = create_key(session, "supervisor", "sue")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        signed_in = await client.post("/dashboard/login", content=f"key={key}",
                                      headers={"content-type": "application/x-www-form-urlencoded"})
    assert signed_in.status_code == 303 and "Secure" in signed_in.headers["set-cookie"]


async def test_the_kpi_api_needs_a_supervisor_and_gives_the_same_numbers(site: Site) -> None:
    assert (await site.client.get("/api/v1/kpis")).status_code == 401
    agent = await site.client.get("/api/v1/kpis", headers={"authorization": f"Bearer {site.agent}"})
    assert agent.status_code == 403
    auth = {"authorization": f"Bearer {site.supervisor}"}
    today = (await site.client.get("/api/v1/kpis", headers=auth)).json()  # default: today until now
    k = today["kpis"]
    assert (k["calls"], k["offered"], k["answered"], k["abandoned"]) == (3, 2, 1, 1)
    assert k["answer_rate"] == 0.5 and k["average_speed_of_answer_s"] == 12.0
    assert k["average_handle_time_s"] == 240.0 and k["containment_rate"] == pytest.approx(1 / 3)
    assert today["hot_topics"]["bucket"] == "hour"
    assert today["alerts"] == {"answer_rate_low": "ok", "longest_wait_high": "ok"}
    week = (await site.client.get("/api/v1/kpis", params={"from": "2026-11-20", "to": "2026-11-27"},
                                  headers=auth)).json()
    assert week["kpis"]["calls"] == 6 and week["hot_topics"]["bucket"] == "day"
    assert today["calls_by_language"] == {"zh": 1, "en": 2}
    chinese = (await site.client.get("/api/v1/kpis", params={"language": "zh"}, headers=auth)).json()
    assert chinese["language"] == "zh" and chinese["kpis"]["calls"] == 1 and chinese["kpis"]["offered"] == 0
    topics = [topic for b in chinese["hot_topics"]["buckets"] for topic, _ in b["top"]]
    assert topics == ["check_order_status"]
    english = (await site.client.get("/api/v1/kpis", params={"language": "en"}, headers=auth)).json()
    assert (english["kpis"]["calls"], english["kpis"]["offered"]) == (2, 2)
    unknown = await site.client.get("/api/v1/kpis", params={"language": "fr"}, headers=auth)
    assert unknown.status_code == 400 and "en, zh" in unknown.json()["detail"]
    bad = await site.client.get("/api/v1/kpis", params={"from": "last tuesday"}, headers=auth)
    assert bad.status_code == 400 and "ISO 8601" in bad.json()["detail"]
    backwards = await site.client.get("/api/v1/kpis", params={"from": "2026-11-27", "to": "2026-11-20"}, headers=auth)
    assert backwards.status_code == 400 and "must be before" in backwards.json()["detail"]


async def test_an_alert_over_the_records_fires_and_shows_on_the_page(site: Site) -> None:
    ops = site.app.state.ops  # type: ignore[attr-defined]
    ops.alerts.clock = lambda: NOW
    # The default rule looks at the last hour (14:00-15:00): no call was offered then, so no data, still ok.
    assert await ops.alerts.tick() == []
    # Over the last day (25 Nov 15:00 - 26 Nov 15:00): t2 answered, t3 abandoned -> 1/2 = 50 % < 80 %, but two
    # calls are fewer than the default 20 calls a rate needs: no data.
    day = AlertRule(name="answer_rate_day", metric="answer_rate", when="below", fire=0.8, clear=0.85, window_s=86400)
    ops.alerts.book = AlertBook([day])
    assert await ops.alerts.tick() == []
    ops.alerts.book = AlertBook([day.model_copy(update={"min_calls": 2})])
    (change,) = await ops.alerts.tick()
    assert (change.rule.name, change.state.value, change.value) == ("answer_rate_day", "firing", 0.5)
    html = (await site.client.get("/dashboard", headers={"authorization": f"Bearer {site.supervisor}"})).text
    assert '<td title="answer_rate_day">Answer rate day</td><td class="firing">Firing</td>' in html
