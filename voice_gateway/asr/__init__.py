"""Streaming speech recognition behind one interface: vosk, faster-whisper (tiny.en, base), Moonshine."""

from voice_gateway.asr.listener import ListenerEvent, TurnListener
from voice_gateway.asr.results import AsrEngine, AsrFinal, AsrPartial, AsrResult, StreamingAsr
from voice_gateway.asr.segmented import SegmentedEngine, SegmentedStream, SegmentTimings, Transcriber, Transcript
from voice_gateway.asr.settings import DEFAULT_ENGINE, ENGINES, AsrSettings, load_engine

__all__ = [
    "DEFAULT_ENGINE",
    "ENGINES",
    "AsrEngine",
    "AsrFinal",
    "AsrPartial",
    "AsrResult",
    "AsrSettings",
    "ListenerEvent",
    "SegmentTimings",
    "SegmentedEngine",
    "SegmentedStream",
    "StreamingAsr",
    "Transcriber",
    "Transcript",
    "TurnListener",
    "load_engine",
]
