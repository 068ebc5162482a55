"""Sans-I/O endpointing: one speech/no-speech decision per frame in, turn events out; time is counted in frames."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from voice_gateway.vad.events import NoInput, SpeechEnded, SpeechLikely, SpeechPaused, SpeechStarted, VadEvent


@dataclass(frozen=True)
class EndpointConfig:
    """Turn-taking timings for phone calls, all in milliseconds."""

    frame_ms: int = 20
    # Onset: a cough or a click is shorter than this much speech and never starts a turn.
    min_speech_ms: int = 200
    onset_gap_ms: int = 100
    # Barge-in: this much confident speech in the onset (classifier probability >= barge_in_probability) stops
    # the bot before the turn is confirmed; a cough is shorter or less speech-like, a click far shorter.
    barge_in_ms: int = 120
    barge_in_probability: float = 0.5  # Silero starts speech at 0.5 (holds it down to 0.35); coughs score < 0.2
    # End of turn: the recogniser decodes at the pause, so the answer is ready when the silence ends the turn;
    # a 300 ms breath mid-sentence does not end it.
    pause_ms: int = 200
    end_of_turn_silence_ms: int = 500
    short_end_of_turn_silence_ms: int = 300  # after a yes/no question: "yes" needs no thinking pause
    # What the caller said so far, judged at the pause (`Endpointer.hold_turn_for`), moves the end of the turn:
    # a whole request ends sooner, "my order number is four eight" waits longer.
    complete_silence_ms: int = 250
    may_continue_silence_ms: int = 800
    incomplete_silence_ms: int = 1200
    max_speech_ms: int = 20_000
    # No input.
    no_input_timeout_ms: int = 6_000

    def __post_init__(self) -> None:
        if self.frame_ms <= 0 or self.min_speech_ms < self.frame_ms:
            raise ValueError("frame_ms must be positive and min_speech_ms at least one frame")
        if not self.frame_ms <= self.barge_in_ms or not 0.0 < self.barge_in_probability <= 1.0:
            raise ValueError("barge_in_ms must be at least one frame and barge_in_probability in (0, 1]")
        if not self.pause_ms < self.short_end_of_turn_silence_ms <= self.end_of_turn_silence_ms:
            raise ValueError("need pause_ms < short_end_of_turn_silence_ms <= end_of_turn_silence_ms")
        if not self.pause_ms <= self.complete_silence_ms <= self.may_continue_silence_ms <= self.incomplete_silence_ms:
            raise ValueError("need pause_ms <= complete_silence_ms <= may_continue_silence_ms <= incomplete_silence_ms")


class EndpointState(enum.Enum):
    """Where the caller is in a turn."""

    IDLE = "idle"
    ONSET = "onset"
    SPEECH = "speech"
    TRAILING = "trailing"


class Signal(enum.Enum):
    """What one frame means once the counters have been updated."""

    VOICED = "voiced"
    UNVOICED = "unvoiced"
    ONSET_CONFIRMED = "onset_confirmed"
    ONSET_LOST = "onset_lost"
    ENDPOINT = "endpoint"


TRANSITIONS: dict[tuple[EndpointState, Signal], EndpointState] = {
    (EndpointState.IDLE, Signal.UNVOICED): EndpointState.IDLE,
    (EndpointState.IDLE, Signal.VOICED): EndpointState.ONSET,
    (EndpointState.IDLE, Signal.ONSET_CONFIRMED): EndpointState.SPEECH,
    (EndpointState.ONSET, Signal.VOICED): EndpointState.ONSET,
    (EndpointState.ONSET, Signal.UNVOICED): EndpointState.ONSET,
    (EndpointState.ONSET, Signal.ONSET_CONFIRMED): EndpointState.SPEECH,
    (EndpointState.ONSET, Signal.ONSET_LOST): EndpointState.IDLE,
    (EndpointState.SPEECH, Signal.VOICED): EndpointState.SPEECH,
    (EndpointState.SPEECH, Signal.UNVOICED): EndpointState.TRAILING,
    (EndpointState.SPEECH, Signal.ENDPOINT): EndpointState.IDLE,
    (EndpointState.TRAILING, Signal.VOICED): EndpointState.SPEECH,
    (EndpointState.TRAILING, Signal.UNVOICED): EndpointState.TRAILING,
    (EndpointState.TRAILING, Signal.ENDPOINT): EndpointState.IDLE,
}


class Endpointer:
    """Turns per-frame voice decisions into SpeechLikely/SpeechStarted/SpeechPaused/SpeechEnded/NoInput events."""

    def __init__(self, config: EndpointConfig | None = None) -> None:
        self.config = config or EndpointConfig()
        self.state = EndpointState.IDLE
        self.now_ms = 0
        self._onset_ms = 0
        self._voiced_ms = 0
        self._gap_ms = 0
        self._confident_ms = 0  # confident frames in the current onset
        self._likely_sent = False
        self._last_voiced_end_ms = 0
        self._paused = False
        self._turn_silence_ms = self.config.end_of_turn_silence_ms
        self._listen_silence_ms = self._turn_silence_ms  # the end of turn listen() chose; what the words may move
        self._no_input_since_ms: int | None = None
        self._no_input_timeout_ms = self.config.no_input_timeout_ms

    def listen(self, *, yes_no: bool = False, no_input_timeout_ms: int | None = None) -> None:
        """The bot now waits for an answer: arm the no-input timer; yes/no questions end turns sooner."""
        cfg = self.config
        self._turn_silence_ms = cfg.short_end_of_turn_silence_ms if yes_no else cfg.end_of_turn_silence_ms
        self._listen_silence_ms = self._turn_silence_ms
        self._no_input_timeout_ms = cfg.no_input_timeout_ms if no_input_timeout_ms is None else no_input_timeout_ms
        self._no_input_since_ms = self.now_ms

    def stop_listening(self) -> None:
        """Disarm the no-input timer (the bot is speaking again, or the call is ending)."""
        self._no_input_since_ms = None

    def hold_turn_for(self, silence_ms: int | None) -> None:
        """This turn ends after `silence_ms` of silence instead (what the caller said so far decided it; at once
        if that much has passed; None: what `listen` chose); the next turn starts from the default again."""
        if self.state in (EndpointState.SPEECH, EndpointState.TRAILING):
            wanted = self._listen_silence_ms if silence_ms is None else silence_ms
            self._turn_silence_ms = max(self.config.pause_ms, wanted)

    def may_end_within(self, ms: int) -> bool:
        """Could the next `ms` of audio pause or end the current turn? (True also when it might not.)"""
        if self.state not in (EndpointState.SPEECH, EndpointState.TRAILING):
            return False
        later_ms = self.now_ms + ms
        silence_needed = self._turn_silence_ms if self._paused else min(self.config.pause_ms, self._turn_silence_ms)
        return (
            later_ms - self._last_voiced_end_ms >= silence_needed
            or later_ms - self._onset_ms >= self.config.max_speech_ms
        )

    def ends_at_the_pause_within(self, ms: int) -> bool:
        """After a reported pause and no voice since, the next `ms` (shorter than a pause, not reaching the longest
        turn) can only end the turn at that pause - whose audio the recogniser already decoded - or bring the
        voice back."""
        return (
            self._paused
            and ms < self.config.pause_ms
            and self.now_ms + ms - self._onset_ms < self.config.max_speech_ms
        )

    def accept(self, voiced: bool, confident: bool | None = None) -> list[VadEvent]:
        """Advance one frame (``confident``: the classifier is sure it is speech; default ``voiced``); return
        the events that frame caused."""
        frame_start = self.now_ms
        self.now_ms += self.config.frame_ms
        events: list[VadEvent] = []
        signal = self._signal(voiced, voiced if confident is None else confident and voiced, frame_start, events)
        try:
            self.state = TRANSITIONS[(self.state, signal)]
        except KeyError:
            raise RuntimeError(f"illegal endpointer transition: {self.state.value} on {signal.value}") from None
        self._check_no_input(events)
        return events

    def _signal(self, voiced: bool, confident: bool, frame_start: int, events: list[VadEvent]) -> Signal:
        """Update the counters for this frame and name what it means; append the events it causes."""
        cfg = self.config
        if self.state in (EndpointState.IDLE, EndpointState.ONSET):
            if self.state is EndpointState.IDLE:
                if not voiced:
                    return Signal.UNVOICED
                self._onset_ms, self._voiced_ms, self._gap_ms = frame_start, 0, 0
                self._confident_ms, self._likely_sent = 0, False
            if voiced:
                self._voiced_ms += cfg.frame_ms
                self._gap_ms = 0
                self._last_voiced_end_ms = self.now_ms
            else:
                self._gap_ms += cfg.frame_ms
            self._confident_ms += cfg.frame_ms if confident else 0
            if self._confident_ms >= cfg.barge_in_ms and not self._likely_sent:
                self._likely_sent = True
                events.append(SpeechLikely(start_ms=self._onset_ms))
            if self._voiced_ms >= cfg.min_speech_ms:
                self._paused = False
                self._no_input_since_ms = None
                events.append(SpeechStarted(start_ms=self._onset_ms))
                return Signal.ONSET_CONFIRMED
            if self._gap_ms > cfg.onset_gap_ms:
                return Signal.ONSET_LOST
            return Signal.VOICED if voiced else Signal.UNVOICED
        if voiced:
            self._last_voiced_end_ms = self.now_ms
            self._paused = False
            if self.now_ms - self._onset_ms >= cfg.max_speech_ms:
                return self._endpoint(events)
            return Signal.VOICED
        silence_ms = self.now_ms - self._last_voiced_end_ms
        if silence_ms >= self._turn_silence_ms or self.now_ms - self._onset_ms >= cfg.max_speech_ms:
            return self._endpoint(events)
        if silence_ms >= cfg.pause_ms and not self._paused:
            self._paused = True
            events.append(SpeechPaused(start_ms=self._onset_ms, end_ms=self._last_voiced_end_ms))
        return Signal.UNVOICED

    def _endpoint(self, events: list[VadEvent]) -> Signal:
        """Close the turn and restore the default end-of-turn silence."""
        silence_ms = self.now_ms - self._last_voiced_end_ms
        waited = self._turn_silence_ms if silence_ms >= self._turn_silence_ms else 0
        events.append(SpeechEnded(start_ms=self._onset_ms, end_ms=self._last_voiced_end_ms, silence_ms=waited))
        self._turn_silence_ms = self._listen_silence_ms = self.config.end_of_turn_silence_ms
        return Signal.ENDPOINT

    def _check_no_input(self, events: list[VadEvent]) -> None:
        """Report NoInput once when the caller stays silent past the timeout."""
        if self._no_input_since_ms is None or self.state not in (EndpointState.IDLE, EndpointState.ONSET):
            return
        waited = self.now_ms - self._no_input_since_ms
        if waited >= self._no_input_timeout_ms:
            self._no_input_since_ms = None
            events.append(NoInput(at_ms=self.now_ms, waited_ms=waited))
