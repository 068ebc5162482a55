"""What the voice activity detector reports: typed, frozen events timed in stream milliseconds."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SpeechStarted:
    """The caller started speaking at ``start_ms`` (reported once ``min_speech_ms`` of speech was heard)."""

    start_ms: int


@dataclass(frozen=True)
class SpeechLikely:
    """Confident speech since ``start_ms`` (``barge_in_ms`` of high-probability frames in the onset): enough to
    stop the bot talking, not yet a turn (SpeechStarted follows, or the onset is lost and nothing does)."""

    start_ms: int


@dataclass(frozen=True)
class SpeechPaused:
    """The caller has been silent for the pause time; the turn may end here (decode speculatively)."""

    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class SpeechEnded:
    """End of turn: speech from ``start_ms`` to ``end_ms`` (last voiced frame) then the end-of-turn silence
    (``silence_ms``: how much was needed, as the words or a yes/no question set it; 0 when speech ran too long)."""

    start_ms: int
    end_ms: int
    silence_ms: int = field(default=0, compare=False)  # how the turn ended, not which turn it is

    @property
    def duration_ms(self) -> int:
        """How long the caller spoke, trailing silence excluded."""
        return self.end_ms - self.start_ms


@dataclass(frozen=True)
class NoInput:
    """The caller said nothing for ``waited_ms`` after the bot started listening."""

    at_ms: int
    waited_ms: int


VadEvent = SpeechStarted | SpeechLikely | SpeechPaused | SpeechEnded | NoInput
