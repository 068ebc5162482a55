"""The call pipeline with real models over an in-memory Twilio pair: voice turns, keys, barge-in, recording."""

from __future__ import annotations

import asyncio
import dataclasses
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from bot.nlu import NLUEngine
from callpilot.brains import build_dialogue
from callpilot.settings import Settings
from voice_gateway.asr import AsrFinal, TurnListener
from voice_gateway.audio import rms
from voice_gateway.call_log import CallLog, LifecycleKind
from voice_gateway.pipeline import CallPipeline, PipelineSettings, VoiceServices, load_services, synthesize_tone
from voice_gateway.simulated_caller import CallerReport, CallerScript, InMemoryTwilioLine, run_caller
from voice_gateway.testing import cough, door_click, silence, speak_8k, trimmed, voiced_cough
from voice_gateway.transports import CallConnection
from voice_gateway.vad import VoiceActivityDetector

RATE = 8000
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def services(nlu_engine: NLUEngine) -> Iterator[VoiceServices]:
    dialogue = build_dialogue(Settings(data_dir=ROOT / "nlu_data"), nlu_engine)
    loaded = load_services(dialogue, tts_engine="hibari")
    yield loaded
    loaded.close()


def fresh(services: VoiceServices, **settings: object) -> VoiceServices:
    """The shared models with a call log in memory and these pipeline settings."""
    pipeline = dataclasses.replace(PipelineSettings(), **settings)  # type: ignore[arg-type]
    return dataclasses.replace(services, call_log=CallLog(None), settings=pipeline)


def transcribe(services: VoiceServices, pcm: bytes) -> str:
    """What the bot said, transcribed back with the same ASR (forced end of turn)."""
    listener = TurnListener(VoiceActivityDetector.create(services.vad, RATE), services.asr.stream(RATE))
    texts = [e.text for e in listener.accept(pcm + silence(1.5)) if isinstance(e, AsrFinal)]
    texts += [e.text for e in listener.flush() if isinstance(e, AsrFinal)]
    return " ".join(texts).lower()


def call(services: VoiceServices, script: CallerScript) -> tuple[CallerReport, CallPipeline]:
    pipelines: list[CallPipeline] = []

    def new_handler(line: CallConnection) -> CallPipeline:
        pipelines.append(CallPipeline(line, services))
        return pipelines[0]

    async def go() -> CallerReport:
        return await run_caller(InMemoryTwilioLine(new_handler), script)

    return asyncio.run(go()), pipelines[0]


def test_order_status_by_voice(services: VoiceServices) -> None:
    voice = fresh(services)
    # Spelled out, Whisper tiny.en hears "where is my order for 8215" (the NLU then asks for the number);
    # hibari reads the digits one by one here, which tiny.en transcribes as 48215.
    audio = silence(6.5) + speak_8k(services, "where is my order 48215")
    report, pipeline = call(voice, CallerScript(audio, realtime=False, speed=4.0))
    log = voice.call_log.events
    assert next(e.kind for e in log) is LifecycleKind.STARTED and log[-1].kind is LifecycleKind.ENDED
    # Answered once, when the greeting's first audio went out: before the greeting was logged as heard.
    [answered] = [e for e in log if e.kind is LifecycleKind.ANSWERED]
    first_bot = next(e for e in log if e.kind is LifecycleKind.TURN and e.data["speaker"] == "bot")
    assert log.index(answered) < log.index(first_bot) and answered.call_ms < first_bot.call_ms
    caller_turns = [e for e in log if e.kind is LifecycleKind.TURN and e.data["speaker"] == "caller"]
    assert caller_turns and "order" in str(caller_turns[0].data["text"]).lower()
    # The reply is the bot audio after the caller's question, transcribed back.
    reply = transcribe(voice, bytes(report.bot_audio[len(audio) :]))
    assert "48215" in reply.replace(" ", "") or "warehouse" in reply, (caller_turns[0].data, reply)
    assert pipeline.state is not None and pipeline.state.turn_gaps_ms
    assert report.clears_ms == []  # nobody talked over the bot


def test_twilio_dtmf_event_reaches_the_ivr(services: VoiceServices) -> None:
    voice = fresh(services)
    report, pipeline = call(voice, CallerScript(silence(0.5), keys=(("1", 0.5),), realtime=False, speed=6))
    keys = [e for e in voice.call_log.events if e.kind is LifecycleKind.DTMF]
    assert [(k.data["keys"], k.data["source"]) for k in keys] == [("1", "transport")]
    bot = [str(e.data["planned"]) for e in voice.call_log.events if e.data.get("speaker") == "bot"]
    assert any("press 1" in text for text in bot), bot
    assert pipeline.state is not None and pipeline.state.barge_ins == 1  # the key cut the greeting short
    assert report.clears_ms


def test_inband_dtmf_tone_reaches_the_ivr(services: VoiceServices) -> None:
    voice = fresh(services)
    audio = silence(0.6) + synthesize_tone("1", RATE, 80, amplitude=0.2)
    call(voice, CallerScript(audio, realtime=False, speed=6))
    keys = [(e.data["keys"], e.data["source"]) for e in voice.call_log.events if e.kind is LifecycleKind.DTMF]
    assert keys == [("1", "inband")]
    turns = [e for e in voice.call_log.events if e.kind is LifecycleKind.TURN and e.data["speaker"] == "caller"]
    assert turns == []  # the tone was not taken for speech


def test_a_word_cut_short_stops_the_bot_and_the_silence_after_it_reprompts(services: VoiceServices) -> None:
    voice = fresh(services, announcement=None)
    yes = np.frombuffer(speak_8k(services, "yes"), dtype="<i2")
    start = int(np.flatnonzero(np.abs(yes) > 300)[0])
    fragment = yes[start : start + RATE * 160 // 1000].tobytes()  # confident speech, too short to be a turn
    report, pipeline = call(voice, CallerScript(silence(4.0) + fragment + silence(9.0), realtime=False, speed=4))
    assert pipeline.state is not None and len(report.clears_ms) == 1
    assert not [e for e in voice.call_log.events if e.kind is LifecycleKind.TURN and e.data["speaker"] == "caller"]
    bot_turns = [e for e in voice.call_log.events if e.data.get("speaker") == "bot"]
    cut = next(i for i, e in enumerate(bot_turns) if e.data["interrupted"])
    assert bot_turns[cut + 1 :], "the bot said nothing more: no-input timer not armed after the barge-in"


def test_barge_in_clears_playback_and_logs_what_was_heard(services: VoiceServices, tmp_path: Path) -> None:
    voice = fresh(services, record_calls=True, recordings_dir=tmp_path, announcement=None)
    speech = speak_8k(services, "I want to talk to a human please")
    noise = np.random.default_rng(1).normal(0, 6000, int(0.15 * RATE))
    noises = np.concatenate([noise, np.zeros(RATE // 2), cough(300, 12000, 1), np.zeros(RATE // 2),
                             voiced_cough(300), np.zeros(RATE // 2), door_click()])
    pcm_noises = noises.clip(-32768, 32767).astype("<i2").tobytes()
    speak_at = 4.0  # seconds: the announcement and greeting take longer than this
    audio = silence(1.5) + pcm_noises + silence(speak_at - 1.5 - noises.size / RATE) + speech
    report, pipeline = call(voice, CallerScript(audio, realtime=False, speed=3))
    assert pipeline.state is not None
    assert len(report.clears_ms) == 1, report.clears_ms  # the noise burst, coughs and the door did not interrupt
    [onset] = pipeline.state.barge_in_onsets_ms
    assert speak_at * 1000 <= onset < speak_at * 1000 + 500  # the VAD found the speech, not the noises
    # The clear follows within 200 ms of audio time after the speech onset (120 ms of confident speech).
    assert report.clears_ms[0] <= onset + 200, (onset, report.clears_ms)
    bot_turns = [e for e in voice.call_log.events if e.data.get("speaker") == "bot"]
    cut = [e for e in bot_turns if e.data["interrupted"]]
    assert cut and len(str(cut[0].data["text"])) < len(str(cut[0].data["planned"]))
    assert any(e.kind is LifecycleKind.HANDOFF for e in voice.call_log.events)
    # Recording: stereo, caller left (silent until they speak), bot right (talking from the start).
    with wave.open(str(tmp_path / f"{pipeline.state.call_id}.wav")) as wav:
        assert (wav.getnchannels(), wav.getframerate()) == (2, RATE)
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)

    def level(channel: int, start_s: float, end_s: float) -> float:
        return rms(frames[int(start_s * RATE) : int(end_s * RATE), channel].tobytes())

    assert level(0, 0.5, 1.4) < 50 < level(1, 0.5, 3.5)  # the noises start at 1.5 s
    assert level(0, speak_at, speak_at + 1.0) > 300
    heard_until = report.clears_ms[0] / 1000
    assert level(1, heard_until + 0.2, heard_until + 1.0) < 50  # the cleared greeting is not in the recording


def _caller_turns(voice: VoiceServices) -> list[str]:
    return [str(e.data["text"]).lower() for e in voice.call_log.events
            if e.kind is LifecycleKind.TURN and e.data["speaker"] == "caller"]


def test_after_a_yes_no_question_a_short_pause_ends_the_callers_turn(services: VoiceServices) -> None:
    # "yes", a 400 ms pause, "please": after the bot's confirmation question (end of turn 300 ms) the pause
    # ends the turn; anywhere else (500 ms) it is a pause inside one turn.
    answer = trimmed(speak_8k(services, "yes")) + silence(0.4) + trimmed(speak_8k(services, "please"))
    voice = fresh(services, announcement=None)
    audio = silence(5.0) + speak_8k(services, "please cancel my order 41877") + silence(9.0) + answer
    call(voice, CallerScript(audio + silence(3.0), realtime=False, speed=4))
    turns = _caller_turns(voice)
    assert len(turns) >= 2 and "cancel" in turns[0], turns
    bot = [str(e.data["planned"]).lower() for e in voice.call_log.events if e.data.get("speaker") == "bot"]
    assert any("do you want to cancel order" in text for text in bot), bot  # the yes/no question was asked
    assert "yes" in turns[1] and "please" not in turns[1], turns

    control = fresh(services, announcement=None)
    call(control, CallerScript(silence(5.0) + answer + silence(3.0), realtime=False, speed=4))
    first = _caller_turns(control)[0]
    assert "yes" in first and "please" in first, first


def test_when_speech_recognition_dies_the_call_goes_on_in_the_keypad_menu(services: VoiceServices) -> None:
    """The ASR's worker processes are gone (shut down: every decode fails, no rebuild): the caller hears an
    apology and the keypad menu instead of a hang-up or silence, and keys still work."""
    from voice_gateway.asr.process_pool import ProcessTranscriber
    from voice_gateway.asr.segmented import SegmentedEngine
    from voice_gateway.asr.whisper_engine import WhisperOptions, tiny_en_dir

    workers = ProcessTranscriber(tiny_en_dir(), WhisperOptions(), processes=1)
    workers.close()  # the workers are gone for good
    voice = dataclasses.replace(fresh(services), asr=SegmentedEngine("whisper-tiny.en", workers))
    audio = silence(6.0) + speak_8k(services, "where is my order") + silence(2.0)
    call(voice, CallerScript(audio, keys=(("1", 10.0),), realtime=False, speed=6, tail_s=4.0))
    bot = [str(e.data["planned"]) for e in voice.call_log.events if e.data.get("speaker") == "bot"]
    assert any("can't understand speech" in text for text in bot), bot
    assert any("press 1" in text for text in bot), bot  # the menu was read out
    keys = [e.data["keys"] for e in voice.call_log.events if e.kind is LifecycleKind.DTMF]
    assert keys == ["1"]
    ended = [e for e in voice.call_log.events if e.kind is LifecycleKind.ENDED]
    assert ended and ended[0].data.get("reason") != "error", ended
