"""The call pipeline: one `CallPipeline` per call turns the gateway's parts into a phone bot."""

from voice_gateway.pipeline.call import CallPipeline
from voice_gateway.pipeline.dtmf_detect import DtmfDetector, DtmfTuning, synthesize_tone
from voice_gateway.pipeline.handoff_port import HandoffPort
from voice_gateway.pipeline.playout import PlayFrame, PlayMark, Playout
from voice_gateway.pipeline.services import (
    DEFAULT_ANNOUNCEMENT,
    Dialogue,
    PipelineSettings,
    VoiceServices,
    load_services,
)
from voice_gateway.pipeline.state import CallState, Phase, Signal, TranscriptLine

__all__ = [
    "DEFAULT_ANNOUNCEMENT",
    "CallPipeline",
    "CallState",
    "Dialogue",
    "DtmfDetector",
    "DtmfTuning",
    "HandoffPort",
    "Phase",
    "PipelineSettings",
    "PlayFrame",
    "PlayMark",
    "Playout",
    "Signal",
    "TranscriptLine",
    "VoiceServices",
    "load_services",
    "synthesize_tone",
]
