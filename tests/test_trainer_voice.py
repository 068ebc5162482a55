"""A phone call's turns reach the trainer's inbox: real TTS speech, real ASR, the real pipeline."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from bot.nlu import NLUEngine
from callpilot.brains import build_dialogue
from callpilot.records.models import InboxItem
from callpilot.records.writer import RecordWriter
from callpilot.settings import Settings
from callpilot.trainer.inbox import InboxRecorder
from tests.recorded_calls import place_call
from tests.records_fixtures import sqlite_database
from voice_gateway.pipeline import load_services
from voice_gateway.simulated_caller import CallerScript
from voice_gateway.testing import RATE, speak_8k

ROOT = Path(__file__).resolve().parent.parent


def test_a_spoken_handoff_request_lands_in_the_inbox_with_its_call(tmp_path: Path, nlu_engine: NLUEngine) -> None:
    database = sqlite_database(tmp_path)
    writer = RecordWriter(database).start()
    recorder = InboxRecorder(database, threshold=0.5)
    dialogue = build_dialogue(Settings(data_dir=ROOT / "nlu_data"), nlu_engine)
    dialogue.turn_observers.append(recorder)
    services = load_services(dialogue, tts_engine="hibari")
    try:
        speech = bytes(RATE * 6) + speak_8k(services, "I want to talk to a human please")
        call_id = place_call(services, writer, CallerScript(speech, realtime=False, speed=4))
        assert recorder.flush(30)
        with database.session() as session:
            items = list(session.scalars(select(InboxItem)))
        assert [(i.reason, i.call_id) for i in items] == [("handoff", call_id)]
        assert "human" in items[0].text.lower() and items[0].channel not in (None, "rest")
    finally:
        services.close()
        recorder.close()
        writer.close()
        database.dispose()
