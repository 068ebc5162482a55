"""Telephone audio: G.711 mu-law, PCM16 helpers, resampling (whole utterances and streams) and 20 ms framing."""

from voice_gateway.audio.frames import FrameBuffer
from voice_gateway.audio.g711 import MULAW_SILENCE, ulaw_decode, ulaw_encode
from voice_gateway.audio.pcm import FRAME_MS, duration_ms, float_to_pcm16, frame_bytes, pcm16_to_float, rms, silence
from voice_gateway.audio.resample import StreamResampler, resample_pcm16

__all__ = [
    "FRAME_MS",
    "MULAW_SILENCE",
    "FrameBuffer",
    "StreamResampler",
    "duration_ms",
    "float_to_pcm16",
    "frame_bytes",
    "pcm16_to_float",
    "resample_pcm16",
    "rms",
    "silence",
    "ulaw_decode",
    "ulaw_encode",
]
