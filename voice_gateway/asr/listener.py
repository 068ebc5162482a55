"""A call's ear: one VAD and one ASR stream fed frame by frame, their events merged in order."""

from __future__ import annotations

import logging
from collections.abc import Callable

from voice_gateway.asr.results import AsrPartial, AsrResult, StreamingAsr
from voice_gateway.asr.segmented import SegmentedStream
from voice_gateway.audio import FrameBuffer
from voice_gateway.vad.detector import VoiceActivityDetector
from voice_gateway.vad.events import SpeechEnded, SpeechPaused, VadEvent

ListenerEvent = VadEvent | AsrResult
# What the caller said so far -> this turn's end-of-turn silence in ms (None: the usual one)
TurnHold = Callable[[str], int | None]
log = logging.getLogger(__name__)


class TurnListener:
    """Sans-I/O: PCM in; SpeechStarted, partials, SpeechPaused, SpeechEnded then its AsrFinal, NoInput out.

    With `hold_turn`, every pause asks it how long this turn's end-of-turn silence should be, given the words
    heard so far (the partial the recogniser produced at the pause): "where is my order" may end sooner than
    "my order number is"."""

    def __init__(self, detector: VoiceActivityDetector, asr: StreamingAsr, hold_turn: TurnHold | None = None) -> None:
        self.detector = detector
        self.asr = asr
        self.hold_turn = hold_turn
        self._frames = FrameBuffer(detector.frame_bytes)
        self._heard = ""  # the latest partial of the current turn

    def listen(self, *, yes_no: bool = False, no_input_timeout_ms: int | None = None) -> None:
        """The bot waits for an answer (shorter end of turn after a yes/no question)."""
        self.detector.listen(yes_no=yes_no, no_input_timeout_ms=no_input_timeout_ms)

    def stop_listening(self) -> None:
        """Disarm the no-input timer."""
        self.detector.stop_listening()

    def may_decode(self, pcm16: bytes) -> bool:
        """Could accepting this audio run the recogniser? If not, it is only buffering and VAD (well under a
        millisecond a frame), cheap enough for the event loop; decodes belong on a worker thread."""
        if not isinstance(self.asr, SegmentedStream):
            return True  # streaming recognisers decode as audio arrives
        frames = (self._frames.pending + len(pcm16)) // self._frames.size
        endpointer = self.detector.endpointer
        ms = frames * endpointer.config.frame_ms
        # Ending the turn right at a pause reuses the pause's decode: no work for the ASR threads (whose queue,
        # under load, is hundreds of milliseconds long).
        return frames > 0 and endpointer.may_end_within(ms) and not endpointer.ends_at_the_pause_within(ms)

    def accept(self, pcm16: bytes) -> list[ListenerEvent]:
        """Feed audio of any length; whole frames go to the ASR stream first, then to the VAD."""
        out: list[ListenerEvent] = []
        for frame in self._frames.push(pcm16):
            streamed = self.asr.accept(frame)
            out.extend(streamed)
            self._remember(streamed)
            for event in self.detector.accept(frame):
                out.append(event)
                heard = self.asr.observe(event)
                out.extend(heard)
                self._remember(heard)
                if isinstance(event, SpeechPaused):
                    self._hold()
                elif isinstance(event, SpeechEnded):
                    self._heard = ""
        return out

    def _remember(self, results: list[AsrResult]) -> None:
        for result in results:
            if isinstance(result, AsrPartial) and result.text.strip():
                self._heard = result.text

    def _hold(self) -> None:
        """At a pause, the words so far may move the end of the turn."""
        if self.hold_turn is not None and self._heard:
            try:
                silence_ms = self.hold_turn(self._heard)
            except Exception:  # the usual silence then decides
                log.exception("turn hold failed")
                silence_ms = None
            self.detector.endpointer.hold_turn_for(silence_ms)

    def reset(self) -> None:
        """Forget buffered audio and the turn's words (after a failed decode: the next frames start clean)."""
        self._frames.clear()
        self._heard = ""

    def flush(self) -> list[AsrResult]:
        """End the turn now (hang-up, key press): the ASR stream's final, if any."""
        return self.asr.flush()
