"""Per-call stereo recording: caller on the left, bot (or agent) on the right, aligned by stream time."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

SAMPLE_WIDTH = 2


class CallRecorder:
    """Sans-I/O: caller audio is appended as it arrives; bot audio is placed at the caller-stream time it was sent.

    The caller stream is the call's clock (telephony sends 20 ms of caller audio every 20 ms), so a bot
    frame sent when `caller_ms` of caller audio had arrived starts at `caller_ms` in the recording, or right
    after the previous bot frame if that is later. `cut_bot` drops bot audio that was queued but never
    played (barge-in).
    """

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._caller = bytearray()
        self._bot = bytearray()

    @property
    def caller_ms(self) -> float:
        """Milliseconds of caller audio recorded: the call's clock."""
        return len(self._caller) / SAMPLE_WIDTH / self.sample_rate * 1000

    def add_caller(self, pcm16: bytes) -> None:
        self._caller += pcm16

    def add_bot(self, pcm16: bytes) -> None:
        """Bot audio sent now: it starts at the caller clock or after the bot audio before it."""
        if len(self._bot) < len(self._caller):
            self._bot += bytes(len(self._caller) - len(self._bot))
        self._bot += pcm16

    def cut_bot(self) -> None:
        """Playback was cleared: bot audio after the current caller time was never heard."""
        if len(self._bot) > len(self._caller):
            del self._bot[len(self._caller) :]

    def stereo_pcm(self) -> bytes:
        """Interleaved PCM16 frames, left = caller, right = bot, padded to the same length."""
        left = np.frombuffer(bytes(self._caller), dtype="<i2")
        right = np.frombuffer(bytes(self._bot), dtype="<i2")
        length = max(len(left), len(right))
        frames = np.zeros((length, 2), dtype="<i2")
        frames[: len(left), 0] = left
        frames[: len(right), 1] = right
        return frames.tobytes()

    def write(self, path: Path) -> Path:
        """Write the stereo WAV (the only step that touches disk)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with wave.open(str(path), "wb") as out:
            out.setnchannels(2)
            out.setsampwidth(SAMPLE_WIDTH)
            out.setframerate(self.sample_rate)
            out.writeframes(self.stereo_pcm())
        return path
