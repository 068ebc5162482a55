"""Sample-rate conversion: whole utterances (`resample_pcm16`, any ratio) and streams (`StreamResampler`, whose
chunks of any size join exactly as if resampled in one go)."""

from __future__ import annotations

from math import gcd

import numpy as np
import numpy.typing as npt
from scipy.signal import firwin, lfilter, resample_poly

from voice_gateway.audio.pcm import float_to_pcm16, pcm16_to_float

MAX_FACTOR = 6  # up/down factors beyond this (e.g. 44.1 kHz <-> 16 kHz) are too costly per call


class StreamResampler:
    """Polyphase resampler (the filter `scipy.signal.resample_poly` designs) that keeps its state per stream.

    `resample_poly` works on a whole signal; applied to 20 ms chunks separately it clicks at every joint.
    This keeps the FIR filter's state and the decimation phase between chunks, so the output of
    `process(a) + process(b)` equals `process(a + b)`. The price is a fixed delay of `delay_samples`.
    """

    def __init__(self, from_rate: int, to_rate: int, *, half_width: int = 10) -> None:
        if from_rate <= 0 or to_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {from_rate} -> {to_rate}")
        common = gcd(from_rate, to_rate)
        self.from_rate, self.to_rate = from_rate, to_rate
        self.up, self.down = to_rate // common, from_rate // common
        if max(self.up, self.down) > MAX_FACTOR:
            raise ValueError(f"{from_rate} -> {to_rate} Hz needs factors {self.up}/{self.down}; max is {MAX_FACTOR}")
        factor = max(self.up, self.down)
        taps = 2 * half_width * factor + 1 if factor > 1 else 1
        # The same design as resample_poly: Kaiser(5.0) low-pass at the lower Nyquist, gain `up`.
        self._taps = firwin(taps, 1.0 / factor, window=("kaiser", 5.0)) * self.up if factor > 1 else np.ones(1)
        self._state = np.zeros(len(self._taps) - 1)
        self._phase = 0  # position of the next upsampled sample, modulo `down`
        self.delay_samples = (taps - 1) // 2 // self.down  # at the output rate

    @property
    def identity(self) -> bool:
        return self.up == self.down == 1

    def process_float(self, samples: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
        """Resample float samples; returns as many output samples as the stream has earned so far."""
        x = np.asarray(samples, dtype=np.float64)
        if self.identity:
            return x.astype(np.float32)
        if self.up > 1:
            stuffed = np.zeros(len(x) * self.up)
            stuffed[:: self.up] = x
            x = stuffed
        y, self._state = lfilter(self._taps, 1.0, x, zi=self._state)
        start = (-self._phase) % self.down
        self._phase = (self._phase + len(y)) % self.down
        return np.asarray(y[start :: self.down], dtype=np.float32)

    def process(self, pcm: bytes) -> bytes:
        """Resample PCM16 little-endian mono bytes."""
        if self.identity:
            if len(pcm) % 2:
                raise ValueError(f"PCM16 needs an even number of bytes, got {len(pcm)}")
            return pcm
        return float_to_pcm16(self.process_float(pcm16_to_float(pcm)))

    def reset(self) -> None:
        """Forget the stream (a new utterance or call)."""
        self._state = self._state * 0.0
        self._phase = 0


def resample_pcm16(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    """Resample a whole PCM16 utterance (any ratio, e.g. 22050 -> 8000) with a polyphase filter.

    Each call starts afresh, so 20 ms chunks resampled one by one click at the joints: use `StreamResampler`.
    """
    if from_rate == to_rate or not pcm:
        return pcm
    common = gcd(from_rate, to_rate)
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    resampled = resample_poly(samples, to_rate // common, from_rate // common)
    return bytes(np.clip(np.rint(resampled), -32768, 32767).astype("<i2").tobytes())
