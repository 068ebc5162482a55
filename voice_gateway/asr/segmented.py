"""VAD-segmented recognition for whole-utterance models (Whisper, Moonshine), decoding during the trailing silence."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from voice_gateway.asr.audio import Samples, check_rate, to_model_rate
from voice_gateway.asr.results import AsrFinal, AsrPartial, AsrResult
from voice_gateway.audio import pcm16_to_float
from voice_gateway.vad.events import SpeechEnded, SpeechPaused, SpeechStarted, VadEvent


@dataclass(frozen=True)
class Transcript:
    """What a whole-utterance model heard, with a 0..1 confidence."""

    text: str
    confidence: float
    language: str | None = None  # what a multilingual model heard ("zh", "en"); None: the model's one language


class Transcriber(Protocol):
    """A loaded whole-utterance model, shared by all calls (must be safe to call from several threads)."""

    def transcribe(self, samples: Samples) -> Transcript:
        """Transcribe 16 kHz float32 mono audio."""
        ...


@dataclass(frozen=True)
class SegmentTimings:
    """How much audio around the speech the model sees, in milliseconds."""

    pre_roll_ms: int = 300
    tail_ms: int = 200
    idle_keep_ms: int = 1000


@dataclass(frozen=True)
class _Speculation:
    end_ms: int
    transcript: Transcript


class SegmentedStream:
    """One call: buffers the turn, decodes at SpeechPaused, reuses that decode at SpeechEnded if nothing followed."""

    def __init__(self, transcriber: Transcriber, sample_rate: int, timings: SegmentTimings | None = None) -> None:
        check_rate(sample_rate)
        self._transcriber = transcriber
        self._rate = sample_rate
        self._timings = timings or SegmentTimings()
        self._buffer = bytearray()
        self._buffer_start_ms = 0
        self._now_ms = 0
        self._turn_start_ms: int | None = None
        self._speculation: _Speculation | None = None
        self.decodes = 0

    def accept(self, pcm16: bytes) -> list[AsrResult]:
        """Buffer audio; outside a turn only the last ``idle_keep_ms`` is kept."""
        self._buffer += pcm16
        self._now_ms = self._buffer_start_ms + self._ms(len(self._buffer))
        if self._turn_start_ms is None:
            self._trim_to(self._now_ms - self._timings.idle_keep_ms)
        return []

    def observe(self, event: VadEvent) -> list[AsrResult]:
        """Start a turn, decode speculatively on a pause, emit the final at the end of the turn."""
        if isinstance(event, SpeechStarted):
            self._turn_start_ms = event.start_ms
            self._speculation = None
            self._trim_to(event.start_ms - self._timings.pre_roll_ms)
            return []
        if self._turn_start_ms is None:
            return []
        if isinstance(event, SpeechPaused):
            transcript = self._decode(event.end_ms + self._timings.tail_ms)
            self._speculation = _Speculation(event.end_ms, transcript)
            return [AsrPartial(transcript.text)] if transcript.text else []
        if isinstance(event, SpeechEnded):
            return [self._finish(event.start_ms, event.end_ms)]
        return []

    def flush(self) -> list[AsrResult]:
        """Force the end of the turn (e.g. the caller pressed a key); nothing if no turn is open."""
        if self._turn_start_ms is None:
            return []
        return [self._finish(self._turn_start_ms, self._now_ms)]

    def _finish(self, start_ms: int, end_ms: int) -> AsrFinal:
        speculation = self._speculation
        if speculation is not None and speculation.end_ms == end_ms:
            transcript = speculation.transcript
        else:
            transcript = self._decode(end_ms + self._timings.tail_ms)
        self._turn_start_ms = None
        self._speculation = None
        self._trim_to(self._now_ms - self._timings.idle_keep_ms)
        return AsrFinal(transcript.text, transcript.confidence, start_ms, end_ms, transcript.language)

    def _decode(self, until_ms: int) -> Transcript:
        """Run the model on the buffered turn up to ``until_ms`` (clipped to what has arrived)."""
        stop = self._bytes(min(until_ms, self._now_ms) - self._buffer_start_ms)
        samples = pcm16_to_float(bytes(self._buffer[:stop]))
        self.decodes += 1
        if samples.size == 0:
            return Transcript("", 0.0)
        return self._transcriber.transcribe(to_model_rate(samples, self._rate))

    def _trim_to(self, start_ms: int) -> None:
        """Drop buffered audio before ``start_ms``."""
        drop = self._bytes(start_ms - self._buffer_start_ms)
        if drop > 0:
            del self._buffer[:drop]
            self._buffer_start_ms += self._ms(drop)

    def _ms(self, n_bytes: int) -> int:
        return n_bytes // 2 * 1000 // self._rate

    def _bytes(self, ms: int) -> int:
        return max(0, ms) * self._rate // 1000 * 2


class SegmentedEngine:
    """A shared whole-utterance model that hands each call a SegmentedStream."""

    def __init__(self, name: str, transcriber: Transcriber, timings: SegmentTimings | None = None) -> None:
        self.name = name
        self.transcriber = transcriber
        self.timings = timings or SegmentTimings()

    def stream(self, sample_rate: int) -> SegmentedStream:
        """A new per-call stream."""
        return SegmentedStream(self.transcriber, sample_rate, self.timings)
