"""Speech recognition with the real bundled models on short real (FSDD) and synthesised (espeak-ng) audio."""

from __future__ import annotations

import os
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from voice_gateway.asr import AsrFinal, AsrPartial, AsrSettings, SegmentedEngine, TurnListener
from voice_gateway.asr.scoring import normalize, word_error_rate
from voice_gateway.asr.vosk_engine import VoskEngine, korean_test_model_dir
from voice_gateway.asr.whisper_engine import join_split_model
from voice_gateway.asr.whisper_engines import tiny_en_engine
from voice_gateway.testing import espeak, pause, phone_audio
from voice_gateway.vad import SileroVad, SpeechEnded, SpeechStarted, VoiceActivityDetector

os.environ.setdefault("HF_HUB_OFFLINE", "1")

RATE = 8000
FSDD = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "fsdd" / "recordings"


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as reader:
        assert reader.getframerate() == RATE and reader.getnchannels() == 1
        return np.frombuffer(reader.readframes(reader.getnframes()), dtype=np.int16).astype(np.float32)


def listen(listener: TurnListener, pcm: bytes) -> list[object]:
    events: list[object] = []
    for offset in range(0, len(pcm), 320):
        events.extend(listener.accept(pcm[offset : offset + 320]))
    return events


@pytest.fixture(scope="module")
def tiny() -> SegmentedEngine:
    return tiny_en_engine()


@pytest.fixture(scope="module")
def silero() -> SileroVad:
    return SileroVad()


def tiny_listener(tiny: SegmentedEngine, silero: SileroVad) -> TurnListener:
    return TurnListener(VoiceActivityDetector.create(silero, RATE), tiny.stream(RATE))


def test_tiny_en_transcribes_a_real_fsdd_digit(tiny: SegmentedEngine, silero: SileroVad) -> None:
    path = FSDD / "7_jackson_0.wav"
    if not path.is_file():
        pytest.skip("the FSDD benchmark is not in ../shared")
    events = listen(tiny_listener(tiny, silero), phone_audio(pause(800), read_wav(path), pause(1200)))
    finals = [e for e in events if isinstance(e, AsrFinal)]
    assert len(finals) == 1
    assert normalize(finals[0].text) == ["seven"]
    assert 0.0 < finals[0].confidence <= 1.0


def test_tiny_en_transcript_is_ready_when_the_endpoint_fires(tiny: SegmentedEngine, silero: SileroVad) -> None:
    listener = tiny_listener(tiny, silero)
    events = listen(listener, phone_audio(pause(1000), espeak("where is my order"), pause(1500)))
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["SpeechLikely", "SpeechStarted", "SpeechPaused", "AsrPartial", "SpeechEnded", "AsrFinal"]
    ended, final = events[4], events[5]
    assert isinstance(ended, SpeechEnded) and isinstance(final, AsrFinal)
    assert word_error_rate([("where is my order", final.text)]) <= 0.25
    assert (final.start_ms, final.end_ms) == (ended.start_ms, ended.end_ms)
    assert 900 <= final.start_ms <= 1200
    # The final reused the decode made during the trailing silence: one decode for the whole turn.
    assert listener.asr.decodes == 1  # type: ignore[attr-defined]
    assert listener.flush() == []


def test_speech_after_a_pause_is_decoded_again_and_kept(tiny: SegmentedEngine, silero: SileroVad) -> None:
    listener = tiny_listener(tiny, silero)
    # espeak ends each phrase with 300 ms of silence: the caller pauses 400 ms (the turn ends after 500 ms).
    audio = phone_audio(pause(600), espeak("my order number"), pause(100), espeak("is four two"), pause(1200))
    events = listen(listener, audio)
    finals = [e for e in events if isinstance(e, AsrFinal)]
    assert sum(isinstance(e, SpeechStarted) for e in events) == 1 and len(finals) == 1
    assert word_error_rate([("my order number is four two", finals[0].text)]) <= 0.35
    assert listener.asr.decodes == 2  # type: ignore[attr-defined]


def test_flush_ends_an_open_turn(tiny: SegmentedEngine, silero: SileroVad) -> None:
    listener = tiny_listener(tiny, silero)
    events = listen(listener, phone_audio(pause(500), espeak("yes please")))
    assert any(isinstance(e, SpeechStarted) for e in events)
    [final] = listener.flush()
    assert isinstance(final, AsrFinal) and word_error_rate([("yes please", final.text)]) <= 0.5


@pytest.fixture(scope="module")
def vosk_ko() -> VoskEngine:
    return VoskEngine(korean_test_model_dir(), name="vosk-ko")


def test_vosk_streams_partials_and_one_final_through_the_real_decoder(vosk_ko: VoskEngine) -> None:
    if "ko" not in subprocess.run(["espeak-ng", "--voices=ko"], capture_output=True, text=True).stdout:
        pytest.skip("espeak-ng has no Korean voice")
    stream = vosk_ko.stream(RATE)
    pcm = phone_audio(pause(300), espeak("안녕하세요", voice="ko"), pause(300))
    results = [r for offset in range(0, len(pcm), 320) for r in stream.accept(pcm[offset : offset + 320])]
    results += stream.observe(SpeechEnded(start_ms=300, end_ms=len(pcm) // 16 - 300))
    partials = [r for r in results if isinstance(r, AsrPartial)]
    finals = [r for r in results if isinstance(r, AsrFinal)]
    assert partials and all(p.text for p in partials)
    assert len(finals) == 1 and all(isinstance(r, AsrPartial | AsrFinal) for r in results)
    final = finals[0]
    assert final.text and 0.0 <= final.confidence <= 1.0
    assert 0 <= final.start_ms < final.end_ms <= len(pcm) // 16
    # The turn is closed: nothing more to flush, and a fresh stream with silence gives no final.
    assert stream.flush() == []
    quiet = vosk_ko.stream(RATE)
    quiet.accept(bytes(16000))
    assert quiet.flush() == []


def test_vosk_rejects_a_folder_that_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        VoskEngine(tmp_path)


def test_split_model_is_joined_in_order(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (first / "model.bin.part1").write_bytes(b"head-")
    (second / "model.bin.part2").write_bytes(b"tail")
    for name in ("config.json", "vocabulary.txt", "tokenizer.json"):
        (first / name).write_text(name)
    files = join_split_model((first, second))
    assert files["model.bin"] == b"head-tail" and files["config.json"] == b"config.json"
    (second / "model.bin.part2").unlink()
    with pytest.raises(FileNotFoundError):
        join_split_model((first, second))


def test_settings_from_environment() -> None:
    assert AsrSettings.from_env({}).engine == "whisper-tiny.en"
    settings = AsrSettings.from_env({"CALLPILOT_ASR_ENGINE": "vosk", "CALLPILOT_ASR_VOSK_MODEL_DIR": "/models/en"})
    assert settings.vosk_model_dir == Path("/models/en")
    with pytest.raises(ValueError, match="VOSK_MODEL_DIR"):
        AsrSettings.from_env({"CALLPILOT_ASR_ENGINE": "vosk"})
    with pytest.raises(ValueError, match="unknown ASR engine"):
        AsrSettings(engine="kaldi")


def test_word_error_rate() -> None:
    assert word_error_rate([("where is my order", "Where is my order?")]) == 0.0
    assert word_error_rate([("seven", "7."), ("two four", "to four")]) == pytest.approx(1 / 3)
    assert word_error_rate([("one", "one two three")]) == 2.0
