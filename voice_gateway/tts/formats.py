"""Synthesised audio in each transport's format: Twilio mu-law 8 kHz, AudioSocket PCM16 8 kHz, browser PCM16."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from voice_gateway.audio import resample_pcm16, ulaw_encode
from voice_gateway.tts.types import AudioChunk


class Encoding(Enum):
    """Sample encodings the transports speak."""

    PCM16 = "pcm16"
    MULAW = "mulaw"


@dataclass(frozen=True)
class OutputFormat:
    """An encoding at a sample rate; `None` rate keeps the engine's own."""

    encoding: Encoding = Encoding.PCM16
    sample_rate: int | None = None

    @property
    def key(self) -> str:
        """Stable text for cache keys and logs, e.g. "mulaw@8000" or "pcm16@native"."""
        return f"{self.encoding.value}@{self.sample_rate or 'native'}"


NATIVE = OutputFormat()
TWILIO = OutputFormat(Encoding.MULAW, 8000)
AUDIOSOCKET = OutputFormat(Encoding.PCM16, 8000)
BROWSER = OutputFormat(Encoding.PCM16, 16000)


def resample_chunk(chunk: AudioChunk, to_rate: int) -> AudioChunk:
    """The chunk at another sample rate, same engine."""
    if chunk.sample_rate == to_rate:
        return chunk
    return AudioChunk(resample_pcm16(chunk.pcm, chunk.sample_rate, to_rate), to_rate, chunk.engine)


def encode(chunk: AudioChunk, output: OutputFormat) -> bytes:
    """Bytes ready for a transport: resampled to the format's rate, then encoded.

    Chunks here are whole sentences or prompts (silence at both ends), so resampling each one on its own
    leaves no audible joints; per-frame streams use voice_gateway.audio.StreamResampler instead.
    """
    rate = output.sample_rate or chunk.sample_rate
    pcm = resample_pcm16(chunk.pcm, chunk.sample_rate, rate)
    if output.encoding is Encoding.MULAW:
        return ulaw_encode(pcm)
    return pcm


def output_rate(chunk: AudioChunk, output: OutputFormat) -> int:
    """The sample rate `encode(chunk, output)` produces."""
    return output.sample_rate or chunk.sample_rate
