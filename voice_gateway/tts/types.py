"""What every speech synthesiser speaks in: PCM16 chunks, the engine protocol, and its one failure."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt


class EngineUnavailable(RuntimeError):
    """The engine cannot speak right now (service unreachable, binary missing, circuit open)."""


class CircuitOpen(EngineUnavailable):
    """The engine failed recently and is skipped until its cool-down is over."""


@dataclass(frozen=True)
class AudioChunk:
    """Signed 16-bit little-endian mono PCM at `sample_rate`, and the engine that spoke it."""

    pcm: bytes
    sample_rate: int
    engine: str = ""

    @property
    def samples(self) -> int:
        """Number of samples in the chunk."""
        return len(self.pcm) // 2

    @property
    def duration_s(self) -> float:
        """Length of the chunk in seconds."""
        return self.samples / self.sample_rate

    def as_array(self) -> npt.NDArray[np.int16]:
        """The samples as an int16 array (a view on `pcm`)."""
        return np.frombuffer(self.pcm, dtype="<i2")

    @classmethod
    def from_float(cls, audio: npt.NDArray[np.floating], sample_rate: int, engine: str = "") -> AudioChunk:
        """Clip float audio in [-1, 1] to PCM16."""
        pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        return cls(pcm=pcm, sample_rate=sample_rate, engine=engine)

    @classmethod
    def join(cls, chunks: Sequence[AudioChunk]) -> AudioChunk:
        """Concatenate chunks of one sample rate (the first chunk's engine names the result)."""
        if not chunks:
            raise ValueError("cannot join zero chunks")
        rates = {c.sample_rate for c in chunks}
        if len(rates) != 1:
            raise ValueError(f"cannot join chunks of different sample rates: {sorted(rates)}")
        return cls(pcm=b"".join(c.pcm for c in chunks), sample_rate=chunks[0].sample_rate, engine=chunks[0].engine)


@runtime_checkable
class TtsEngine(Protocol):
    """A speech synthesiser that streams PCM16 mono audio at its own rate as it produces it."""

    @property
    def name(self) -> str:
        """Short stable name, used in logs and cache keys ("piper", "hibari", "espeak", "edge", ...)."""
        ...

    @property
    def voices(self) -> tuple[str, ...]:
        """Voices usable offline right now; the first is the default."""
        ...

    @property
    def sample_rate(self) -> int:
        """Sample rate of every chunk this engine yields."""
        ...

    def synthesize(self, text: str, voice: str | None = None) -> AsyncIterator[AudioChunk]:
        """Speak `text`; raises EngineUnavailable before the first chunk if the engine cannot speak."""
        ...


def pick_voice(engine_name: str, voices: tuple[str, ...], voice: str | None) -> str:
    """The requested voice if the engine has it, its default if none was asked for; else ValueError."""
    if voice is None:
        return voices[0]
    if voice not in voices:
        raise ValueError(f"{engine_name}: unknown voice {voice!r}; available: {', '.join(voices)}")
    return voice
