"""Phone key tones (DTMF) as PCM16 at the bridge's rate, for an agent who presses keys to the caller (an IVR of
another company, a conference PIN). Each key is the sum of its row and column frequency, 100 ms on and 60 ms
off, at about -10 dBFS per tone: what ITU-T Q.23/Q.24 receivers accept."""

from __future__ import annotations

import numpy as np

ROWS = {"1": 697, "2": 697, "3": 697, "A": 697, "4": 770, "5": 770, "6": 770, "B": 770,
        "7": 852, "8": 852, "9": 852, "C": 852, "*": 941, "0": 941, "#": 941, "D": 941}
COLUMNS = {"1": 1209, "4": 1209, "7": 1209, "*": 1209, "2": 1336, "5": 1336, "8": 1336, "0": 1336,
           "3": 1477, "6": 1477, "9": 1477, "#": 1477, "A": 1633, "B": 1633, "C": 1633, "D": 1633}
TONE_MS, GAP_MS = 100, 60
AMPLITUDE = 0.3 * 32767  # each of the two tones


def dtmf_pcm(digit: str, rate: int = 16000) -> bytes:
    """One key: the tone then the pause, PCM16 mono at `rate`; ValueError for anything but 0-9 * # A-D."""
    if digit not in ROWS:
        raise ValueError(f"not a phone key: {digit!r}")
    t = np.arange(rate * TONE_MS // 1000) / rate
    tone = AMPLITUDE * (np.sin(2 * np.pi * ROWS[digit] * t) + np.sin(2 * np.pi * COLUMNS[digit] * t))
    pcm = np.concatenate([tone, np.zeros(rate * GAP_MS // 1000)])
    return pcm.astype("<i2").tobytes()


def frames(pcm: bytes, frame_bytes: int) -> list[bytes]:
    """`pcm` cut into frames of `frame_bytes` (the last one padded with silence)."""
    padded = pcm + b"\0" * (-len(pcm) % frame_bytes)
    return [padded[i:i + frame_bytes] for i in range(0, len(padded), frame_bytes)]
