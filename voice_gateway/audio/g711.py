"""G.711 mu-law (PCMU), vectorised with numpy and bit-exact with the reference (Sun) implementation."""

from __future__ import annotations

from functools import cache

import numpy as np
import numpy.typing as npt

MULAW_SILENCE = 0xFF  # the mu-law byte for a zero sample
_BIAS = 0x84
_CLIP_14 = 8159  # magnitude limit on the 14-bit scale
_SEGMENT_ENDS_14 = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)


@cache
def _encode_table() -> npt.NDArray[np.uint8]:
    """The mu-law byte for each of the 65536 PCM16 values, indexed by `sample + 32768`."""
    # Like audioop and the Sun code: drop 2 bits (arithmetic shift), then bias, segment and quantise.
    pcm14 = np.arange(-32768, 32768, dtype=np.int32) >> 2
    mask = np.where(pcm14 < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(pcm14), _CLIP_14) + (_BIAS >> 2)
    segment = np.searchsorted(_SEGMENT_ENDS_14, magnitude, side="left")
    quantised = (segment << 4) | ((magnitude >> np.minimum(segment + 1, 8)) & 0x0F)
    ulaw = np.where(segment >= 8, 0x7F, quantised) ^ mask
    return ulaw.astype(np.uint8)


@cache
def _decode_table() -> npt.NDArray[np.int16]:
    """The PCM16 value of each of the 256 mu-law bytes."""
    inverted = ~np.arange(256, dtype=np.int32) & 0xFF
    magnitude = (((inverted & 0x0F) << 3) + _BIAS) << ((inverted & 0x70) >> 4)
    return np.where(inverted & 0x80, _BIAS - magnitude, magnitude - _BIAS).astype(np.int16)


def ulaw_encode_samples(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.uint8]:
    """Mu-law bytes for an array of int16 samples."""
    return _encode_table()[samples.astype(np.int32) + 32768]


def ulaw_decode_samples(ulaw: npt.NDArray[np.uint8]) -> npt.NDArray[np.int16]:
    """Int16 samples for an array of mu-law bytes."""
    return _decode_table()[ulaw]


def ulaw_encode(pcm: bytes) -> bytes:
    """PCM16 little-endian mono -> mu-law, one byte per sample (like `audioop.lin2ulaw(pcm, 2)`)."""
    if len(pcm) % 2:
        raise ValueError(f"PCM16 needs an even number of bytes, got {len(pcm)}")
    return ulaw_encode_samples(np.frombuffer(pcm, dtype="<i2")).tobytes()


def ulaw_decode(ulaw: bytes) -> bytes:
    """Mu-law -> PCM16 little-endian mono (like `audioop.ulaw2lin(ulaw, 2)`)."""
    return ulaw_decode_samples(np.frombuffer(ulaw, dtype=np.uint8)).astype("<i2").tobytes()


# A-law (PCMA), the G.711 of most trunks outside North America and Japan (Sun's g711.c).
_SEGMENT_ENDS_13 = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)


@cache
def _alaw_encode_table() -> npt.NDArray[np.uint8]:
    """The A-law byte for each of the 65536 PCM16 values, indexed by `sample + 32768`."""
    pcm13 = np.arange(-32768, 32768, dtype=np.int32) >> 3
    mask = np.where(pcm13 >= 0, 0xD5, 0x55)
    magnitude = np.where(pcm13 >= 0, pcm13, -pcm13 - 1)
    segment = np.searchsorted(_SEGMENT_ENDS_13, magnitude, side="left")
    shift = np.where(segment < 2, 1, segment)
    quantised = (segment << 4) | ((magnitude >> shift) & 0x0F)
    alaw = np.where(segment >= 8, 0x7F, quantised) ^ mask
    return alaw.astype(np.uint8)


@cache
def _alaw_decode_table() -> npt.NDArray[np.int16]:
    """The PCM16 value of each of the 256 A-law bytes."""
    value = np.arange(256, dtype=np.int32) ^ 0x55
    mantissa = (value & 0x0F) << 4
    segment = (value & 0x70) >> 4
    magnitude = np.where(segment == 0, mantissa + 8, (mantissa + 0x108) << np.maximum(segment - 1, 0))
    return np.where(value & 0x80, magnitude, -magnitude).astype(np.int16)


def alaw_encode(pcm: bytes) -> bytes:
    """PCM16 little-endian mono -> A-law, one byte per sample (like `audioop.lin2alaw(pcm, 2)`)."""
    if len(pcm) % 2:
        raise ValueError(f"PCM16 needs an even number of bytes, got {len(pcm)}")
    return _alaw_encode_table()[np.frombuffer(pcm, dtype="<i2").astype(np.int32) + 32768].tobytes()


def alaw_decode(alaw: bytes) -> bytes:
    """A-law -> PCM16 little-endian mono (like `audioop.alaw2lin(alaw, 2)`)."""
    return _alaw_decode_table()[np.frombuffer(alaw, dtype=np.uint8)].astype("<i2").tobytes()
