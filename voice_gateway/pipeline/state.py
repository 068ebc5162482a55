"""One call's state: who, where the conversation is (a transition table), what was said and heard."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Phase(StrEnum):
    """Where the call is in its turn-taking."""

    CONNECTING = "connecting"
    SPEAKING = "speaking"  # bot audio is being synthesised or played
    LISTENING = "listening"  # the bot waits for the caller (no-input timer armed)
    THINKING = "thinking"  # the dialogue engine is working on the caller's turn
    ENDED = "ended"


class Signal(StrEnum):
    """What moves a call between phases."""

    SPEAK = "speak"
    PLAYED = "played"  # all bot audio has been played
    CALLER_TURN = "caller_turn"  # a final transcript, a key or a no-input timeout
    BARGE_IN = "barge_in"
    END = "end"


TRANSITIONS: dict[tuple[Phase, Signal], Phase] = {
    (Phase.CONNECTING, Signal.SPEAK): Phase.SPEAKING,
    (Phase.CONNECTING, Signal.CALLER_TURN): Phase.THINKING,
    (Phase.CONNECTING, Signal.PLAYED): Phase.LISTENING,
    (Phase.SPEAKING, Signal.SPEAK): Phase.SPEAKING,
    (Phase.SPEAKING, Signal.PLAYED): Phase.LISTENING,
    (Phase.SPEAKING, Signal.BARGE_IN): Phase.LISTENING,
    (Phase.SPEAKING, Signal.CALLER_TURN): Phase.THINKING,
    (Phase.LISTENING, Signal.SPEAK): Phase.SPEAKING,
    (Phase.LISTENING, Signal.CALLER_TURN): Phase.THINKING,
    (Phase.LISTENING, Signal.PLAYED): Phase.LISTENING,
    (Phase.THINKING, Signal.SPEAK): Phase.SPEAKING,
    (Phase.THINKING, Signal.PLAYED): Phase.LISTENING,
    (Phase.THINKING, Signal.CALLER_TURN): Phase.THINKING,
    **{(phase, Signal.END): Phase.ENDED for phase in Phase},
}


class IllegalCallTransition(RuntimeError):
    """A signal the current phase does not accept: a bug in the pipeline."""


@dataclass(frozen=True)
class TranscriptLine:
    """A line of the call as it happened: the caller's words or keys, or what the bot was heard to say."""

    speaker: str  # "caller" | "bot"
    text: str
    call_ms: int
    interrupted: bool = False
    dtmf: str | None = None


@dataclass
class SpokenSentence:
    """A sentence sent to the caller, and whether its mark came back (it was heard in full)."""

    text: str
    utterance: int
    heard: bool = False


KEY_DEDUPE_MS = 300  # the same key from the transport and from the audio within this window is one press
KEY_MASKS_SPEECH_MS = 150  # speech overlapping a key press (its tone) is not a caller turn


@dataclass
class CallState:
    """Everything one call knows; created at CallStarted and handed along, never global."""

    call_id: str
    transport: str
    sample_rate: int
    caller: str = ""
    phase: Phase = Phase.CONNECTING
    clock_ms: float = 0.0  # caller audio received: the call's clock
    transcript: list[TranscriptLine] = field(default_factory=list)
    sentences: dict[str, SpokenSentence] = field(default_factory=dict)  # by mark name
    utterances: int = 0
    utterances_logged: int = 0
    marks_ignored: set[str] = field(default_factory=set)  # cleared marks a peer may still echo
    key_times_ms: list[float] = field(default_factory=list)
    last_key: tuple[str, float] | None = None
    ivr_timeout_ms: int | None = None
    expects_yes_no: bool = False  # the bot's last question wants a yes or a no: a shorter end of turn
    hangup_pending: bool = False
    transfer_to: str | None = None  # when the pending hang-up is a transfer: where the caller goes
    handoffs: int = 0
    barge_ins: int = 0
    barge_in_onsets_ms: list[int] = field(default_factory=list)  # where the caller's speech began, per barge-in
    caller_turn_end_ms: float | None = None  # last voiced frame of the caller's latest turn
    turn_silence_ms: int = 0  # the silence that ended the caller's latest turn (its words may have set it)
    turn_gaps_ms: list[float] = field(default_factory=list)  # caller's last voice -> first bot frame sent
    answered_ms: float | None = None  # the call clock when the bot's first audio was sent (the call is answered)

    def move(self, signal: Signal) -> Phase:
        """Apply a signal; an illegal one raises."""
        try:
            self.phase = TRANSITIONS[(self.phase, signal)]
        except KeyError:
            raise IllegalCallTransition(f"call {self.call_id}: {signal.value} while {self.phase.value}") from None
        return self.phase

    def new_mark(self, text: str) -> str:
        """Name the mark after a sentence of the current utterance."""
        name = f"u{self.utterances}s{len(self.sentences)}"
        self.sentences[name] = SpokenSentence(text, self.utterances)
        return name

    def heard_text(self, utterance: int) -> str:
        """The sentences of an utterance whose marks came back: what the caller actually heard."""
        return " ".join(s.text for s in self.sentences.values() if s.utterance == utterance and s.heard)

    def planned_text(self, utterance: int) -> str:
        return " ".join(s.text for s in self.sentences.values() if s.utterance == utterance)

    def press_key(self, digit: str) -> bool:
        """Note a key at the call clock; False when it is the same press heard twice (transport and audio)."""
        last = self.last_key
        if last is not None and last[0] == digit and self.clock_ms - last[1] < KEY_DEDUPE_MS:
            return False
        self.last_key = (digit, self.clock_ms)
        self.key_times_ms.append(self.clock_ms)
        return True

    def masked_by_key(self, start_ms: float, end_ms: float) -> bool:
        """Speech between these times overlaps a key press: its tone (or the press's noise) was heard as words."""
        start, end = start_ms - KEY_MASKS_SPEECH_MS, end_ms + KEY_MASKS_SPEECH_MS
        return any(start <= t <= end for t in self.key_times_ms)
