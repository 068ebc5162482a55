"""A call's ear: one VAD and one ASR stream fed frame by frame, their events merged in order."""

from __future__ import annotations

from voice_gateway.asr.results import AsrResult, StreamingAsr
from voice_gateway.asr.segmented import SegmentedStream
from voice_gateway.audio import FrameBuffer
from voice_gateway.vad.detector import VoiceActivityDetector
from voice_gateway.vad.events import VadEvent

ListenerEvent = VadEvent | AsrResult


class TurnListener:
    """Sans-I/O: PCM in; SpeechStarted, partials, SpeechPaused, SpeechEnded then its AsrFinal, NoInput out."""

    def __init__(self, detector: VoiceActivityDetector, asr: StreamingAsr) -> None:
        self.detector = detector
        self.asr = asr
        self._frames = FrameBuffer(detector.frame_bytes)

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
        return frames > 0 and endpointer.may_end_within(frames * endpointer.config.frame_ms)

    def accept(self, pcm16: bytes) -> list[ListenerEvent]:
        """Feed audio of any length; whole frames go to the ASR stream first, then to the VAD."""
        out: list[ListenerEvent] = []
        for frame in self._frames.push(pcm16):
            out.extend(self.asr.accept(frame))
            for event in self.detector.accept(frame):
                out.append(event)
                out.extend(self.asr.observe(event))
        return out

    def reset(self) -> None:
        """Forget buffered audio (after a failed decode: the next frames start clean)."""
        self._frames.clear()

    def flush(self) -> list[AsrResult]:
        """End the turn now (hang-up, key press): the ASR stream's final, if any."""
        return self.asr.flush()
