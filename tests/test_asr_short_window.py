"""Whisper on a window sized to the utterance: the same words as the 30 s path, silence stays silent."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import wave

import numpy as np
import pytest
from scipy.signal import resample_poly

from voice_gateway.asr.scoring import normalize
from voice_gateway.asr.short_window import WindowPolicy
from voice_gateway.asr.whisper_engine import WhisperOptions, WhisperTranscriber, tiny_en_dir

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def espeak_16k(text: str) -> np.ndarray:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    wav = subprocess.run(["espeak-ng", "-v", "en-us", "--stdout", text], capture_output=True, check=True).stdout
    with wave.open(io.BytesIO(wav)) as reader:
        rate = reader.getframerate()
        samples = np.frombuffer(reader.readframes(reader.getnframes()), dtype=np.int16).astype(np.float32)
    return (resample_poly(samples, 16000, rate) / 32768).astype(np.float32)


@pytest.fixture(scope="module")
def short() -> WhisperTranscriber:
    return WhisperTranscriber.from_dir(tiny_en_dir(), WhisperOptions(window=WindowPolicy()))


def test_a_question_decodes_on_the_short_window(short: WhisperTranscriber) -> None:
    audio = espeak_16k("where is my order")
    assert short.short is not None and short.short.decode(audio) is not None  # took the short path
    transcript = short.transcribe(audio)
    assert normalize(transcript.text) == ["where", "is", "my", "order"]
    assert 0.0 < transcript.confidence <= 1.0


def test_a_number_read_out_stays_one_number(short: WhisperTranscriber) -> None:
    assert "," not in short.transcribe(espeak_16k("my order number is 48215")).text


def test_silence_and_line_noise_give_no_words(short: WhisperTranscriber) -> None:
    noise = np.random.default_rng(0).normal(0, 0.002, 16000).astype(np.float32)
    assert short.transcribe(np.zeros(16000, dtype=np.float32)).text == ""
    assert short.transcribe(noise).text == ""


def test_window_is_sized_to_the_audio_and_long_audio_takes_the_full_path() -> None:
    policy = WindowPolicy(min_window_ms=3000, max_window_ms=10_000)
    assert policy.window_frames(16000) == 300  # 1 s + 1 s margin, at least 3 s
    assert policy.window_frames(16000 * 5 + 16) == 700  # rounded up to whole seconds
    assert policy.window_frames(16000 * 10) is None
    assert WindowPolicy().window_frames(16000 * 9) == 1000
    assert WindowPolicy().max_new_tokens(16000 * 2) == 20  # bounded by the audio's length


def test_policy_rejects_inconsistent_windows() -> None:
    with pytest.raises(ValueError, match="min_window_ms"):
        WindowPolicy(min_window_ms=12_000, max_window_ms=10_000)
