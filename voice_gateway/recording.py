"""Per-call stereo recording: caller on the left, bot (or agent) on the right, aligned by stream time.

`CallRecorder` (sans-I/O) lines the two tracks up; `RecordingFile` streams what is settled to a hidden
temporary WAV in the recordings folder during the call and renames it into place when the call ends, so a
long call never sits in memory and a crash never leaves a half-written file under a recording's name.
"""

from __future__ import annotations

import contextlib
import os
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
        self._drained_bytes = 0  # per track: audio already handed to the file

    @property
    def caller_ms(self) -> float:
        """Milliseconds of caller audio recorded: the call's clock."""
        return (self._drained_bytes + len(self._caller)) / SAMPLE_WIDTH / self.sample_rate * 1000

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

    def drain(self, *, everything: bool = False) -> bytes:
        """Stereo PCM of what can no longer change - everything before the caller clock (bot audio placed after
        it may still be cut) - removed from memory; `everything` at the end of the call."""
        settled = max(len(self._caller), len(self._bot)) if everything else len(self._caller)
        settled -= settled % SAMPLE_WIDTH
        if settled == 0:
            return b""
        left = np.frombuffer(bytes(self._caller[:settled]), dtype="<i2")
        right = np.frombuffer(bytes(self._bot[:settled]), dtype="<i2")
        frames = np.zeros((settled // SAMPLE_WIDTH, 2), dtype="<i2")
        frames[: len(left), 0] = left
        frames[: len(right), 1] = right
        del self._caller[:settled]
        del self._bot[:settled]
        self._drained_bytes += settled
        return frames.tobytes()

    @property
    def held_bytes(self) -> int:
        """Bytes of audio in memory (what `drain` has not taken yet)."""
        return len(self._caller) + len(self._bot)

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


def free_name(path: Path) -> Path:
    """`path`, or `name-2.wav`, `name-3.wav` ... if a file is there already: a recording never overwrites another."""
    candidate, number = path, 2
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}-{number}{path.suffix}")
        number += 1
    return candidate


class RecordingFile:
    """A WAV written while the call goes on: `.<name>.part` in the target folder (created 0700, the file 0600),
    renamed to its name by `finish` (to a free name if one appeared meanwhile)."""

    def __init__(self, path: Path, sample_rate: int, channels: int = 2) -> None:
        self.path = path
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.part = path.with_name(f".{path.name}.part")
        descriptor = os.open(self.part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self._file = os.fdopen(descriptor, "wb")
        self._wav = wave.open(self._file, "wb")  # noqa: SIM115 - closed by finish / abandon
        self._wav.setnchannels(channels)
        self._wav.setsampwidth(SAMPLE_WIDTH)
        self._wav.setframerate(sample_rate)
        self.bytes_written = 0

    def write(self, pcm16: bytes) -> None:
        if pcm16:
            self._wav.writeframesraw(pcm16)
            self.bytes_written += len(pcm16)

    def finish(self) -> Path:
        """Close (the header gets its sizes) and move into place; returns where it went."""
        self._wav.close()
        self._file.close()
        final = free_name(self.path)
        os.replace(self.part, final)
        return final

    def abandon(self) -> None:
        """Give up (the disk failed): close and remove the temporary file."""
        for closing in (self._wav.close, self._file.close):
            with contextlib.suppress(OSError, ValueError):
                closing()
        self.part.unlink(missing_ok=True)

