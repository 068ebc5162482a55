"""What a queued caller hears, and the agent's voice on its way to the caller: sans-I/O, paced by the call clock."""

from __future__ import annotations

from collections import deque

import numpy as np

from voice_gateway.audio import FrameBuffer, StreamResampler
from voice_gateway.audio.pcm import FRAME_MS, frame_bytes

BRIDGE_RATE = 16000  # agent <-> caller audio crosses Redis as PCM16 mono at this rate, 20 ms per message

# A slow, quiet arpeggio (C major, then A minor), each note with a soft attack and release.
HOLD_NOTES_HZ = (261.63, 329.63, 392.00, 329.63, 220.00, 261.63, 329.63, 261.63)
HOLD_NOTE_MS = 400
HOLD_LEVEL = 0.12  # about -18 dBFS: audible without being harsh, above any "is it silent?" threshold


def hold_loop(sample_rate: int) -> bytes:
    """One loop of hold music as PCM16: a gentle generated tone pattern, never silence."""
    per_note = sample_rate * HOLD_NOTE_MS // 1000
    t = np.arange(per_note) / sample_rate
    envelope = np.sin(np.pi * np.arange(per_note) / per_note) ** 2  # raised cosine: no clicks at the joints
    notes = [
        HOLD_LEVEL * envelope * (np.sin(2 * np.pi * f * t) + 0.3 * np.sin(4 * np.pi * f * t)) / 1.3
        for f in HOLD_NOTES_HZ
    ]
    samples = np.concatenate(notes)
    return (samples * 32767).astype("<i2").tobytes()


def beep_frames(sample_rate: int, *, hz: float = 1000.0, ms: int = 400) -> list[bytes]:
    """The voicemail tone, as 20 ms frames."""
    t = np.arange(sample_rate * ms // 1000) / sample_rate
    pcm = (0.3 * np.sin(2 * np.pi * hz * t) * 32767).astype("<i2").tobytes()
    return FrameBuffer.for_pcm16(sample_rate).push(pcm)


class HoldMusic:
    """Hands out hold music 20 ms at a time, looping forever."""

    def __init__(self, sample_rate: int) -> None:
        self._loop = hold_loop(sample_rate)
        self._frame = frame_bytes(sample_rate)
        self._at = 0

    def frame(self) -> bytes:
        end = self._at + self._frame
        if end <= len(self._loop):
            chunk = self._loop[self._at : end]
        else:
            chunk = self._loop[self._at :] + self._loop[: end - len(self._loop)]
        self._at = end % len(self._loop)
        return chunk


class AgentAudio:
    """A small jitter buffer for the agent's voice: frames at the line's rate, sent when the call clock is due.

    The agent's browser and the caller both send 20 ms every 20 ms, but on different clocks and through
    Redis; when frames pile up (the agent's side ran ahead) the oldest go, so delay never exceeds `max_ms`.
    """

    def __init__(self, line_rate: int, *, lead_ms: int = 60, max_ms: int = 300) -> None:
        self._resampler = StreamResampler(BRIDGE_RATE, line_rate)
        self._framer = FrameBuffer.for_pcm16(line_rate)
        self._frames: deque[bytes] = deque()
        self.lead_ms, self.max_frames = lead_ms, max(1, max_ms // FRAME_MS)
        self.play_until_ms = 0.0
        self.dropped = 0

    def push(self, pcm16_bridge_rate: bytes) -> None:
        """Agent audio from the bridge (PCM16 at BRIDGE_RATE), any length."""
        self._frames.extend(self._framer.push(self._resampler.process(pcm16_bridge_rate)))
        while len(self._frames) > self.max_frames:
            self._frames.popleft()
            self.dropped += 1

    def due(self, now_ms: float) -> list[bytes]:
        """Frames that start before `now_ms + lead_ms`."""
        out: list[bytes] = []
        while self._frames:
            start = max(self.play_until_ms, now_ms)
            if start >= now_ms + self.lead_ms:
                break
            out.append(self._frames.popleft())
            self.play_until_ms = start + FRAME_MS
        return out

    def clear(self) -> None:
        self._frames.clear()
        self._framer.clear()


class ToBridge:
    """Caller audio at the line's rate -> 20 ms PCM16 frames at BRIDGE_RATE for the agent."""

    def __init__(self, line_rate: int) -> None:
        self._resampler = StreamResampler(line_rate, BRIDGE_RATE)
        self._framer = FrameBuffer.for_pcm16(BRIDGE_RATE)

    def frames(self, pcm16: bytes) -> list[bytes]:
        return self._framer.push(self._resampler.process(pcm16))
