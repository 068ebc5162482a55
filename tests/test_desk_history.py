"""The agent desk between calls, on the whole server with its records database (SQLite): my calls of the last
days with outcome and length, my numbers today, one of my calls opened (audited), and the contact of a caller I
talked to; another agent's calls and callers stay closed."""

from __future__ import annotations

import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from bot.nlu import NLUEngine
from callpilot.app import create_app
from callpilot.records.apikeys import create_key
from callpilot.records.models import AuditEntry, CallRecord
from callpilot.records.projection import RecordEvent
from callpilot.records.writer import store_events
from callpilot.settings import Settings
from handoff import agents_path
from handoff.directory import AgentDirectory
from tests.redis_fixtures import own_embedded_redis  # noqa: F401 (autouse: a fresh in-process Redis)

ROOT = Path(__file__).resolve().parent.parent


def call(call_id: str, agent_id: str, started: datetime, talk_s: float, *, number: str = "+16175550142",
         disposition: str = "resolved") -> CallRecord:
    return CallRecord(call_id=call_id, channel="voice", status="completed", caller_number=number, language="en",
                      started_at=started, ended_at=started + timedelta(seconds=talk_s + 40), duration_s=talk_s + 40,
                      contained=False, queue="orders", agent_id=agent_id, agent_name=agent_id, talk_s=talk_s,
                      handoff_at=started + timedelta(seconds=30), agent_connected_at=started + timedelta(seconds=38),
                      disposition=disposition, notes="new address given",
                      transcript=[{"at": started.isoformat(), "speaker": "caller", "text": "where is my order"},
                                  {"at": started.isoformat(), "speaker": "agent", "text": "let me look"}])


def test_an_agent_sees_their_own_calls_numbers_and_callers_only(tmp_path: Path, nlu_engine: NLUEngine) -> None:
    config = Settings.load(None, {}, data_dir=ROOT / "nlu_data", state_dir=tmp_path / "var",
                           database_url=f"sqlite:///{tmp_path / 'rec.db'}", audiosocket_port=0,
                           call_log=tmp_path / "calls.jsonl")
    directory = AgentDirectory(agents_path(config))
    maria, maria_token = directory.add("Maria", {"orders": 3})
    ann, _ = directory.add("Ann", {"orders": 3})
    app = create_app(config, engine=nlu_engine)
    app.state.voice.start_loading = lambda: None
    now = datetime.now(UTC)
    with TestClient(app) as client:
        with app.state.records.database.session() as session:
            session.add_all([call("today-1", maria.agent_id, now - timedelta(minutes=20), 120),
                             call("today-2", maria.agent_id, now - timedelta(minutes=5), 60, number="+16175550199"),
                             call("days-3", maria.agent_id, now - timedelta(days=3), 300, disposition="follow_up"),
                             call("days-10", maria.agent_id, now - timedelta(days=10), 90),
                             call("anns-1", ann.agent_id, now - timedelta(minutes=3), 45, number="+16175550123")])
        as_maria = {"Authorization": f"Bearer {maria_token}"}
        assert client.get("/agent/api/calls").status_code == 401
        today = (now - timedelta(hours=1)).isoformat()  # the desk sends the start of the agent's local day
        mine = client.get("/agent/api/calls", params={"days": 7, "today": today}, headers=as_maria).json()
        assert [c["call_id"] for c in mine["calls"]] == ["today-2", "today-1", "days-3"]  # newest first, 7 days
        assert mine["calls"][2]["outcome"] == "handed over" and mine["calls"][2]["disposition"] == "follow_up"
        assert mine["today"] == {"calls": 2, "average_handle_s": 90.0, "talk_s": 180.0}
        assert mine["period"]["calls"] == 3
        bad = client.get("/agent/api/calls", params={"today": "2026-12-04T00:00:00"}, headers=as_maria)
        assert bad.status_code == 400 and "offset" in bad.json()["detail"]
        assert client.get("/agent/api/calls", params={"days": 400}, headers=as_maria).status_code == 422

        opened = client.get("/agent/api/calls/today-1", headers=as_maria).json()
        assert [line["speaker"] for line in opened["transcript"]] == ["caller", "agent"]
        assert [e["what"] for e in opened["timeline"]][-1] == "wrap-up" and opened["notes"] == "new address given"
        assert client.get("/agent/api/calls/anns-1", headers=as_maria).status_code == 404  # Ann's call

        contact = client.get("/agent/api/contacts", params={"number": "+1 617 555 0142"}, headers=as_maria)
        assert contact.status_code == 200 and contact.json()["name"] == "Sarah Miller"
        assert client.get("/agent/api/contacts", params={"number": "+16175550123"},
                          headers=as_maria).status_code == 404  # Ann's caller, not Maria's
        with app.state.records.database.session() as session:
            audited = [(a.actor, a.action, a.target) for a in session.query(AuditEntry).all()]
        assert (f"agent:{maria.agent_id}", "call.view", "today-1") in audited
        assert not any(target == "anns-1" for _, _, target in audited)


def test_the_wallboard_counts_each_queues_day_from_the_records(tmp_path: Path, nlu_engine: NLUEngine) -> None:
    """Orders today: three offered, answered after 10 s and 35 s, one caller gave up; the service level (20 s) is
    1 of 3 and the average speed of answer 22.5 s. Yesterday's call and the tech queue's stay apart."""
    config = Settings.load(None, {}, data_dir=ROOT / "nlu_data", state_dir=tmp_path / "var",
                           database_url=f"sqlite:///{tmp_path / 'rec.db'}", audiosocket_port=0,
                           call_log=tmp_path / "calls.jsonl")
    app = create_app(config, engine=nlu_engine)
    app.state.voice.start_loading = lambda: None
    now = datetime.now(UTC)
    day = now - timedelta(hours=2)

    def handed(call_id: str, at: datetime, *, wait_s: float | None, queue: str = "orders") -> CallRecord:
        row = call(call_id, "maria" if wait_s is not None else "", at, 60)
        row.queue, row.handoff_at, row.wait_s = queue, at + timedelta(seconds=5), wait_s
        if wait_s is None:
            row.agent_id, row.talk_s, row.status, row.end_reason = None, None, "abandoned", "caller_hangup"
        return row

    with TestClient(app) as client:
        with app.state.records.database.session() as session:
            session.add_all([handed("w-1", now - timedelta(minutes=30), wait_s=10),
                             handed("w-2", now - timedelta(minutes=20), wait_s=35),
                             handed("w-3", now - timedelta(minutes=10), wait_s=None),
                             handed("w-old", now - timedelta(days=1, hours=3), wait_s=5),
                             handed("w-tech", now - timedelta(minutes=5), wait_s=4, queue="tech")])
        with app.state.database.session() as session:
            supervisor = create_key(session, "supervisor", "floor")
        assert client.get("/supervisor/api/wallboard").status_code == 401
        board = client.get("/supervisor/api/wallboard", params={"today": day.isoformat()},
                           headers={"Authorization": f"Bearer {supervisor}"}).json()
    orders = board["queues"]["orders"]
    assert (orders["offered"], orders["answered"], orders["abandoned"]) == (3, 2, 1)
    assert orders["service_level"] == pytest.approx(1 / 3) and orders["asa_s"] == pytest.approx(22.5)
    assert board["queues"]["tech"]["offered"] == 1
    assert board["thresholds"]["service_level"] == {"amber": 0.8, "red": 0.6, "below": True}


def test_voicemails_are_listed_played_and_marked_done_by_a_supervisor(tmp_path: Path, nlu_engine: NLUEngine) -> None:
    """Two callers left messages (through the call log's `voicemail` stage, as the pipeline logs it); one record
    points outside the recordings folder and is never served. Plays and done marks are audited."""
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    message = recordings / "voicemail-vm-1.wav"
    with wave.open(str(message), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(bytes(16000))
    config = Settings.load(None, {}, data_dir=ROOT / "nlu_data", state_dir=tmp_path / "var",
                           database_url=f"sqlite:///{tmp_path / 'rec.db'}", audiosocket_port=0,
                           call_log=tmp_path / "calls.jsonl", recordings_dir=recordings)
    app = create_app(config, engine=nlu_engine)
    app.state.voice.start_loading = lambda: None
    now = datetime.now(UTC)

    def left_message(call_id: str, path: Path, at: datetime) -> list[RecordEvent]:
        return [RecordEvent(call_id, "started", at, {"transport": "twilio", "caller": "+16175550142"}),
                RecordEvent(call_id, "handoff", at + timedelta(seconds=5), {"reason": "caller_asked", "skill": "orders"}),
                RecordEvent(call_id, "handoff", at + timedelta(seconds=60), {"stage": "voicemail", "path": str(path)}),
                RecordEvent(call_id, "ended", at + timedelta(seconds=90), {"reason": "hangup"})]

    with TestClient(app) as client:
        with app.state.records.database.session() as session:
            store_events(session, [*left_message("vm-1", message, now - timedelta(minutes=30)),
                                   *left_message("vm-2", tmp_path / "elsewhere.wav", now - timedelta(minutes=10))],
                         retention_days=30)
        with app.state.database.session() as session:
            supervisor, admin = create_key(session, "supervisor", "floor"), create_key(session, "admin", "ops")
        as_supervisor = {"Authorization": f"Bearer {supervisor}"}
        assert client.get("/health").json()["leader"] is True  # one process on its own Redis leads
        assert client.get("/supervisor/api/voicemails").status_code == 401
        listed = client.get("/supervisor/api/voicemails", headers=as_supervisor).json()
        assert [v["call_id"] for v in listed] == ["vm-2", "vm-1"] and listed[1]["caller_number"] == "+16175550142"
        played = client.get("/supervisor/api/voicemails/vm-1.wav", headers=as_supervisor)
        assert played.status_code == 200 and played.content[:4] == b"RIFF"
        assert client.get("/supervisor/api/voicemails/vm-2.wav", headers=as_supervisor).status_code == 404
        assert client.post("/supervisor/api/voicemails/vm-1/done", headers=as_supervisor).json() == {"done": "vm-1"}
        assert [v["call_id"] for v in client.get("/supervisor/api/voicemails", headers=as_supervisor).json()] == ["vm-2"]
        assert client.post("/supervisor/api/voicemails/nope/done", headers=as_supervisor).status_code == 404
        audit = client.get("/api/v1/audit", headers={"Authorization": f"Bearer {admin}"}).json()
    assert {("voicemail.play", "vm-1"), ("voicemail.done", "vm-1")} <= {(a["action"], a["target"]) for a in audit}
