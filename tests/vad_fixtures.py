"""The voice activity detector on whole recordings, for the VAD tests: Silero once per module (the `silero`
fixture), and what a detector makes of PCM fed to it chunk by chunk."""

from __future__ import annotations

import pytest

from voice_gateway.testing import FRAME, RATE
from voice_gateway.vad import SileroVad, VadEvent, VoiceActivityDetector, WebRtcVad


@pytest.fixture(scope="module", name="silero")
def silero_vad() -> SileroVad:
    return SileroVad()


def detect(backend: SileroVad | WebRtcVad, pcm: bytes, chunk: int = FRAME) -> list[VadEvent]:
    """Every event a detector on `backend` raises for 8 kHz `pcm`, fed `chunk` bytes at a time."""
    detector = VoiceActivityDetector.create(backend, RATE)
    events: list[VadEvent] = []
    for offset in range(0, len(pcm), chunk):
        events.extend(detector.accept(pcm[offset : offset + chunk]))
    return events
