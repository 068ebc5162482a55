"""Voice activity detection and endpointing for phone calls (sans-I/O: frames in, events out)."""

from voice_gateway.vad.classifiers import FrameClassifier, SileroClassifier, SileroVad, VadBackend, WebRtcVad
from voice_gateway.vad.detector import VoiceActivityDetector
from voice_gateway.vad.endpointer import EndpointConfig, Endpointer, EndpointState
from voice_gateway.vad.events import NoInput, SpeechEnded, SpeechLikely, SpeechPaused, SpeechStarted, VadEvent

__all__ = [
    "EndpointConfig",
    "EndpointState",
    "Endpointer",
    "FrameClassifier",
    "NoInput",
    "SileroClassifier",
    "SileroVad",
    "SpeechEnded",
    "SpeechLikely",
    "SpeechPaused",
    "SpeechStarted",
    "VadBackend",
    "VadEvent",
    "VoiceActivityDetector",
    "WebRtcVad",
]
