"""Simulated phone calls through the real pipeline end up as call records: IVR path, intents, language,
the handoff's summary and an absolute recording path that `callpilot records purge` finds from anywhere."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from bot.nlu import NLUEngine
from callpilot.brains import build_dialogue
from callpilot.cli import app as cli
from callpilot.records.db import Database
from callpilot.records.models import AuditEntry, CallRecord
from callpilot.records.schemas import CallOut
from callpilot.records.writer import RecordWriter
from callpilot.settings import Settings
from tests.recorded_calls import CALLER, place_call
from tests.records_fixtures import sqlite_database
from voice_gateway.pipeline import VoiceServices, load_services
from voice_gateway.simulated_caller import CallerScript
from voice_gateway.testing import RATE, speak_8k

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def services(nlu_engine: NLUEngine) -> Iterator[VoiceServices]:
    dialogue = build_dialogue(Settings(data_dir=ROOT / "nlu_data"), nlu_engine)
    loaded = load_services(dialogue, tts_engine="hibari")
    yield loaded
    loaded.close()


@pytest.fixture
def records(tmp_path: Path) -> Iterator[tuple[Database, RecordWriter]]:
    database = sqlite_database(tmp_path)
    writer = RecordWriter(database).start()
    yield database, writer
    writer.close()
    database.dispose()


def row_of(database: Database, call_id: str) -> CallRecord:
    with database.session() as session:
        row = session.scalar(select(CallRecord).where(CallRecord.call_id == call_id))
    assert row is not None
    return row


def test_ivr_keys_to_an_agent_leave_the_path_and_handoff_in_the_record_and_a_purgeable_recording(
    services: VoiceServices, records: tuple[Database, RecordWriter], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    database, writer = records
    server_dir, elsewhere = tmp_path / "server", tmp_path / "elsewhere"
    server_dir.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(server_dir)  # the server runs here, with a relative recordings folder
    # Key 2 (returns) over the greeting, then 3 (the returns team) in the returns menu.
    script = CallerScript(bytes(RATE * 2), keys=(("2", 0.5), ("3", 2.0)), realtime=False, speed=6)
    call_id = place_call(services, writer, script, record_calls=True, recordings_dir=Path("rec"))

    row = row_of(database, call_id)
    assert row.ivr_path == ["main", "2:returns"]
    assert (row.queue, row.handoff_reason, row.contained) == ("returns", "ivr_request", False)
    assert row.caller_number == CALLER and row.customer_id == "C001"
    assert "[keys 23]" in [line["text"] for line in row.transcript]  # the keys as one run, up to the handoff
    summary = row.extra["handoff_summary"]
    assert "keypad: main > 2:returns" in summary and CALLER not in summary  # redacted like the transcript
    assert row.language is None  # no word was spoken

    # The recording's path is absolute, so a purge started from another folder deletes the file.
    recording = Path(row.recording_path or "")
    assert recording.is_absolute() and recording.parent == server_dir / "rec" and recording.exists()
    assert row.ended_at is not None
    monkeypatch.chdir(elsewhere)
    after_retention = (row.ended_at + timedelta(days=91)).isoformat()
    result = CliRunner().invoke(cli, ["records", "purge", "--now", after_retention],
                                env={"CALLPILOT_DATABASE_URL": database.url})
    assert result.exit_code == 0, result.output
    assert f"purged {call_id}: {recording}" in result.output
    assert not recording.exists()
    with database.session() as session:
        audit = session.scalar(select(AuditEntry).where(AuditEntry.target == call_id))
    assert audit is not None and audit.detail["file_existed"] is True


def test_a_spoken_request_for_a_person_logs_language_and_intents_with_confidences(
    services: VoiceServices, records: tuple[Database, RecordWriter],
) -> None:
    database, writer = records
    speech = bytes(RATE * 6) + speak_8k(services, "I want to talk to a human please")
    call_id = place_call(services, writer, CallerScript(speech, realtime=False, speed=4))

    row = row_of(database, call_id)
    assert row.language == "en"
    assert row.handoff_reason is not None and row.queue is not None and row.contained is False
    assert "talk_to_human" in row.intents
    scores = {s["intent"]: s["confidence"] for s in row.extra["intent_scores"]}
    assert list(scores) == row.intents and 0.0 < scores["talk_to_human"] <= 1.0
    out = CallOut.of(row)  # what GET /api/v1/calls/{id} returns
    assert [(s.intent, s.confidence) for s in out.intent_scores] == list(scores.items())
