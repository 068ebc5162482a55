"""A call's voice activity detector: PCM bytes in, turn events out (framing + classifier + endpointer)."""

from __future__ import annotations

from voice_gateway.audio import FrameBuffer
from voice_gateway.vad.classifiers import FrameClassifier, VadBackend
from voice_gateway.vad.endpointer import EndpointConfig, Endpointer, EndpointState
from voice_gateway.vad.events import VadEvent


class VoiceActivityDetector:
    """Sans-I/O: split any PCM16 mono chunk into frames, classify each, and endpoint; no clocks."""

    def __init__(self, classifier: FrameClassifier, sample_rate: int, config: EndpointConfig | None = None) -> None:
        self.endpointer = Endpointer(config)
        self.sample_rate = sample_rate
        self._classifier = classifier
        self._frames = FrameBuffer.for_pcm16(sample_rate, self.endpointer.config.frame_ms)

    @classmethod
    def create(
        cls, backend: VadBackend, sample_rate: int, config: EndpointConfig | None = None
    ) -> VoiceActivityDetector:
        """A detector with its own classifier state over a shared backend."""
        return cls(backend.classifier(sample_rate), sample_rate, config)

    @property
    def frame_bytes(self) -> int:
        """Bytes in one frame at this sample rate."""
        return self._frames.size

    @property
    def now_ms(self) -> int:
        """Stream time: milliseconds of audio accepted as whole frames."""
        return self.endpointer.now_ms

    @property
    def in_speech(self) -> bool:
        """True from SpeechStarted until SpeechEnded."""
        return self.endpointer.state in (EndpointState.SPEECH, EndpointState.TRAILING)

    def listen(self, *, yes_no: bool = False, no_input_timeout_ms: int | None = None) -> None:
        """The bot waits for an answer: arm the no-input timer and pick the end-of-turn silence."""
        self.endpointer.listen(yes_no=yes_no, no_input_timeout_ms=no_input_timeout_ms)

    def stop_listening(self) -> None:
        """Disarm the no-input timer."""
        self.endpointer.stop_listening()

    def accept(self, pcm16: bytes) -> list[VadEvent]:
        """Feed audio (any length; whole frames are processed, the rest waits for more)."""
        events: list[VadEvent] = []
        for frame in self._frames.push(pcm16):
            voiced = self._classifier.is_speech(frame)
            confident = self._classifier.probability >= self.endpointer.config.barge_in_probability
            events.extend(self.endpointer.accept(voiced, confident))
        return events
