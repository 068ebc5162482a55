"""The streaming speech recognition interface: typed results, a per-call stream, a shared engine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from voice_gateway.vad.events import VadEvent


@dataclass(frozen=True)
class AsrPartial:
    """An interim hypothesis for the turn so far; a later partial or the final replaces it."""

    text: str


@dataclass(frozen=True)
class AsrFinal:
    """The transcript of one caller turn; times are stream milliseconds, confidence is 0..1."""

    text: str
    confidence: float
    start_ms: int
    end_ms: int
    language: str | None = None  # the language a multilingual recogniser heard


AsrResult = AsrPartial | AsrFinal


class StreamingAsr(Protocol):
    """One call's recognition state; feed 20 ms PCM16 mono frames at the stream's sample rate."""

    def accept(self, pcm16: bytes) -> list[AsrResult]:
        """Take audio; return any results it produced."""
        ...

    def observe(self, event: VadEvent) -> list[AsrResult]:
        """Take the call's VAD decision (pause: decode speculatively; end: emit the final)."""
        ...

    def flush(self) -> list[AsrResult]:
        """End the turn now: return its final (if anything was said) and reset for the next turn."""
        ...


class AsrEngine(Protocol):
    """A loaded model shared by all calls."""

    name: str

    def stream(self, sample_rate: int) -> StreamingAsr:
        """A new per-call stream (8000 or 16000 Hz)."""
        ...
