"""The Goertzel DTMF detector on synthesised tones, speech-like noise and timing edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from voice_gateway.pipeline.dtmf_detect import DtmfDetector, synthesize_tone

KEYS = "123A456B789C*0#D"


def gap(rate: int, ms: int) -> bytes:
    return bytes(rate * ms // 1000 * 2)


@pytest.mark.parametrize("rate", [8000, 16000])
def test_every_key_is_found_once_in_order(rate: int) -> None:
    pcm = b"".join(synthesize_tone(key, rate, 60) + gap(rate, 50) for key in KEYS)
    assert DtmfDetector(rate).accept(pcm) == list(KEYS)


def test_chunk_size_does_not_matter() -> None:
    pcm = b"".join(synthesize_tone(key, 8000, 70) + gap(8000, 60) for key in "159#")
    detector = DtmfDetector(8000)
    found = [d for offset in range(0, len(pcm), 94) for d in detector.accept(pcm[offset : offset + 94])]
    assert found == list("159#")


def test_a_held_key_counts_once_and_a_repeated_key_twice() -> None:
    pcm = synthesize_tone("5", 8000, 400) + gap(8000, 60) + synthesize_tone("5", 8000, 60)
    assert DtmfDetector(8000).accept(pcm) == ["5", "5"]


def test_too_short_or_too_quiet_tones_are_ignored() -> None:
    short = synthesize_tone("7", 8000, 25)
    quiet = synthesize_tone("7", 8000, 80, amplitude=0.002)
    assert DtmfDetector(8000).accept(short + gap(8000, 100) + quiet) == []


def test_one_tone_alone_or_noise_is_not_a_key() -> None:
    t = np.arange(8000) / 8000
    single = (0.3 * np.sin(2 * np.pi * 770 * t) * 32767).astype("<i2").tobytes()
    noise = np.random.default_rng(0).normal(0, 5000, 16000).clip(-32768, 32767).astype("<i2").tobytes()
    assert DtmfDetector(8000).accept(single + noise) == []


def test_a_key_under_line_noise_is_found() -> None:
    tone = np.frombuffer(synthesize_tone("9", 8000, 80), "<i2").astype(np.float64)
    noisy = tone + np.random.default_rng(2).normal(0, 800, tone.size)
    assert DtmfDetector(8000).accept(noisy.clip(-32768, 32767).astype("<i2").tobytes()) == ["9"]
