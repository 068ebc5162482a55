"""A call whose turns end by what the caller said: real Silero VAD, Whisper tiny.en, the trained NLU and hibari's
voice as the caller. "my order number is", a 700 ms pause, then the number is one turn (the usual 500 ms silence
splits it); a whole question ends after 250 ms of silence instead of 500."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.dialogue.turn_end import TurnEndJudge
from bot.nlu import NLUEngine
from callpilot.brains import build_dialogue
from callpilot.settings import Settings
from callpilot.voice import id_patterns
from voice_gateway.call_log import CallLog, LifecycleKind
from voice_gateway.pipeline import CallPipeline, PipelineSettings, VoiceServices, load_services
from voice_gateway.pipeline.transcript_fixes import TranscriptFixer
from voice_gateway.simulated_caller import CallerScript, InMemoryTwilioLine, run_caller
from voice_gateway.testing import silence, speak_8k, trimmed
from voice_gateway.transports import CallConnection

DATA = Path(__file__).resolve().parent.parent / "nlu_data"


@pytest.fixture(scope="module")
def services(nlu_engine: NLUEngine) -> Iterator[VoiceServices]:
    loaded = load_services(build_dialogue(Settings(data_dir=DATA), nlu_engine), tts_engine="hibari")
    yield loaded
    loaded.close()


def line(services: VoiceServices, nlu_engine: NLUEngine, *, by_words: bool) -> VoiceServices:
    """A fresh call log; turns end by the words (as `callpilot run` does) or by the silence alone."""
    fixer = TranscriptFixer(id_patterns(DATA))
    judge = TurnEndJudge(nlu_engine, [p.pattern for p in fixer.id_patterns], fixer.fix) if by_words else None
    settings = dataclasses.replace(PipelineSettings(), announcement=None)
    return dataclasses.replace(services, call_log=CallLog(None), settings=settings, turn_end=judge)


def caller_turns(services: VoiceServices, audio: bytes) -> list[dict[str, object]]:
    """Call with `audio` after the greeting; the caller's turns as the call log has them."""
    def new_handler(connection: CallConnection) -> CallPipeline:
        return CallPipeline(connection, services)

    script = CallerScript(silence(5.0) + audio + silence(4.0), realtime=False, speed=4)
    asyncio.run(run_caller(InMemoryTwilioLine(new_handler), script))
    return [dict(e.data) for e in services.call_log.events
            if e.kind is LifecycleKind.TURN and e.data["speaker"] == "caller"]


def test_an_unfinished_sentence_waits_through_the_pause(services: VoiceServices, nlu_engine: NLUEngine) -> None:
    audio = trimmed(speak_8k(services, "my order number is")) + silence(0.7) + trimmed(
        speak_8k(services, "four eight two one five"))
    by_words = caller_turns(line(services, nlu_engine, by_words=True), audio)
    assert len(by_words) == 1, by_words
    assert "order number" in str(by_words[0]["text"]).lower()
    by_silence = caller_turns(line(services, nlu_engine, by_words=False), audio)
    assert len(by_silence) == 2, by_silence  # the usual 500 ms cut the caller off mid-sentence
    assert [turn["end_of_turn_ms"] for turn in by_silence] == [500, 500]


def test_a_whole_question_ends_sooner(services: VoiceServices, nlu_engine: NLUEngine) -> None:
    audio = speak_8k(services, "what are your opening hours")
    by_words = caller_turns(line(services, nlu_engine, by_words=True), audio)
    assert [turn["end_of_turn_ms"] for turn in by_words] == [250], by_words
    assert by_words[0]["intent"] == "opening_hours"
    by_silence = caller_turns(line(services, nlu_engine, by_words=False), audio)
    assert [turn["end_of_turn_ms"] for turn in by_silence] == [500]
