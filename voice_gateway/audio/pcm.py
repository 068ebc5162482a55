"""PCM16 little-endian mono <-> float32 in [-1, 1), its level (RMS), and small duration helpers."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

SAMPLE_WIDTH = 2  # bytes per PCM16 sample
FRAME_MS = 20  # the telephony packet size every transport uses


def pcm16_to_float(pcm: bytes) -> npt.NDArray[np.float32]:
    """PCM16 little-endian bytes -> float32 samples in [-1, 1)."""
    if len(pcm) % SAMPLE_WIDTH:
        raise ValueError(f"PCM16 needs an even number of bytes, got {len(pcm)}")
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


def float_to_pcm16(samples: npt.NDArray[np.floating]) -> bytes:
    """Float samples (nominally [-1, 1]) -> PCM16 little-endian bytes, rounded and clipped."""
    scaled = np.rint(np.asarray(samples, dtype=np.float64) * 32768.0)
    return np.clip(scaled, -32768, 32767).astype("<i2").tobytes()


def rms(pcm16: bytes) -> float:
    """Root mean square level of PCM16 samples on the int16 scale (100 is about -50 dBFS); 0.0 for no samples.

    A trailing odd byte is left out.
    """
    samples = np.frombuffer(pcm16[: len(pcm16) // SAMPLE_WIDTH * SAMPLE_WIDTH], dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0


def frame_bytes(sample_rate: int, frame_ms: int = FRAME_MS) -> int:
    """Bytes in one PCM16 frame of `frame_ms` at `sample_rate` (320 for 20 ms at 8 kHz)."""
    samples = sample_rate * frame_ms // 1000
    if samples * 1000 != sample_rate * frame_ms:
        raise ValueError(f"{frame_ms} ms is not a whole number of samples at {sample_rate} Hz")
    return samples * SAMPLE_WIDTH


def duration_ms(pcm: bytes, sample_rate: int) -> float:
    """How long a PCM16 buffer plays, in milliseconds."""
    return len(pcm) / SAMPLE_WIDTH / sample_rate * 1000


def silence(ms: int, sample_rate: int) -> bytes:
    """PCM16 silence of `ms` milliseconds."""
    return bytes(sample_rate * ms // 1000 * SAMPLE_WIDTH)
