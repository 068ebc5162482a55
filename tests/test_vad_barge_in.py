"""Barge-in onsets on real Silero scores: a caller's words make speech likely within ~200 ms; a cough, a hum
of a cough and a door's click do not (so they never cut the bot off)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.vad_fixtures import detect, silero_vad  # noqa: F401  (the `silero` fixture)
from voice_gateway.testing import cough, door_click, espeak, line_noise, to_pcm, voiced_cough
from voice_gateway.vad import SileroVad, SpeechLikely, SpeechStarted


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
    pcm = to_pcm(np.concatenate([line_noise(500), noise, line_noise(800)]))
    assert detect(silero, pcm) == []  # no SpeechLikely: the bot keeps talking


def test_words_make_speech_likely_before_the_turn_starts(silero: SileroVad) -> None:
    pcm = to_pcm(np.concatenate([line_noise(500), espeak("where is my order"), line_noise(800)]))
    events = detect(silero, pcm)
    likely = [e for e in events if isinstance(e, SpeechLikely)]
    started = [e for e in events if isinstance(e, SpeechStarted)]
    assert len(likely) == 1 and len(started) == 1 and events.index(likely[0]) < events.index(started[0])
    assert likely[0].start_ms == started[0].start_ms
