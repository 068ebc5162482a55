"""Barge-in onsets on real Silero scores: a caller's words make speech likely within ~200 ms; a cough, a hum
of a cough and a door's click do not (so they never cut the bot off)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import butter, lfilter

from tests.test_vad import RATE, detect, espeak, silence, to_pcm
from voice_gateway.vad import SileroVad, SpeechLikely, SpeechStarted


@pytest.fixture(scope="module")
def silero() -> SileroVad:
    return SileroVad()


def band(noise: np.ndarray, low: float, high: float) -> np.ndarray:
    b, a = butter(2, [low / (RATE / 2), high / (RATE / 2)], "band")
    return np.asarray(lfilter(b, a, noise))


def cough(ms: int, level: float, seed: int) -> np.ndarray:
    """A burst of breath noise: 10 ms attack, 80 ms decay."""
    t = np.arange(RATE * ms // 1000) / RATE
    noise = band(np.random.default_rng(seed).normal(0, 1, t.size), 300, 3000)
    return level * noise / np.abs(noise).max() * (1 - np.exp(-t / 0.01)) * np.exp(-t / 0.08)


def voiced_cough(ms: int) -> np.ndarray:
    """A cough with a vocal-fold buzz in it (140 Hz harmonics), the hardest to tell from a word."""
    t = np.arange(RATE * ms // 1000) / RATE
    buzz = band(sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 20)), 400, 2500)
    envelope = (1 - np.exp(-t / 0.01)) * np.exp(-t / 0.06)
    return 15000 * envelope * 0.6 * buzz / np.abs(buzz).max() + 0.4 * cough(ms, 15000, 5)


def door_click() -> np.ndarray:
    """A latch: two ringing knocks 40 ms apart."""
    t = np.arange(RATE // 10) / RATE
    out = 15000 * np.sin(2 * np.pi * 900 * t) * np.exp(-t / 0.004)
    out[RATE // 25 :] += (
        6000 * np.sin(2 * np.pi * 600 * t[: out.size - RATE // 25]) * np.exp(-t[: out.size - RATE // 25] / 0.006)
    )
    return out


@pytest.mark.parametrize(
    "noise",
    [
        cough(300, 12000, 1),
        cough(400, 25000, 4),
        voiced_cough(200),
        voiced_cough(300),
        door_click(),
        np.concatenate([door_click(), door_click(), door_click()]),
    ],
    ids=["cough", "loud-cough", "voiced-cough", "long-voiced-cough", "door-click", "door-rattle"],
)
def test_coughs_and_clicks_are_not_speech(silero: SileroVad, noise: np.ndarray) -> None:
    pcm = to_pcm(np.concatenate([silence(500), noise, silence(800)]))
    assert detect(silero, pcm) == []  # no SpeechLikely: the bot keeps talking


def test_words_make_speech_likely_before_the_turn_starts(silero: SileroVad) -> None:
    pcm = to_pcm(np.concatenate([silence(500), espeak("where is my order"), silence(800)]))
    events = detect(silero, pcm)
    likely = [e for e in events if isinstance(e, SpeechLikely)]
    started = [e for e in events if isinstance(e, SpeechStarted)]
    assert len(likely) == 1 and len(started) == 1 and events.index(likely[0]) < events.index(started[0])
    assert likely[0].start_ms == started[0].start_ms
