"""In-band DTMF: find key tones in caller audio with the Goertzel algorithm (sans-I/O, any chunk size)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

LOW_FREQS = (697.0, 770.0, 852.0, 941.0)
HIGH_FREQS = (1209.0, 1336.0, 1477.0, 1633.0)
KEYPAD = ("123A", "456B", "789C", "*0#D")


@dataclass(frozen=True)
class DtmfTuning:
    """Detection thresholds; ITU-T Q.24 asks for tones of >= 40 ms and pauses of >= 40 ms."""

    block_ms: int = 10
    min_tone_blocks: int = 4  # 40 ms of a steady key
    min_gap_blocks: int = 3  # a key must stop for 30 ms before the same key counts again
    min_level: float = 1e-4  # mean power of each tone relative to full scale (about -40 dBFS)
    tone_share: float = 0.6  # the two tones must carry this share of the block's energy
    twist_db: float = 8.0  # max level difference between the two tones


def synthesize_tone(digit: str, sample_rate: int, ms: int, *, amplitude: float = 0.25) -> bytes:
    """PCM16 of one DTMF key (for tests and the simulated caller)."""
    row = next(i for i, keys in enumerate(KEYPAD) if digit in keys)
    col = KEYPAD[row].index(digit)
    t = np.arange(sample_rate * ms // 1000) / sample_rate
    wave = amplitude * (np.sin(2 * np.pi * LOW_FREQS[row] * t) + np.sin(2 * np.pi * HIGH_FREQS[col] * t))
    return bytes(np.clip(np.rint(wave * 32767), -32768, 32767).astype("<i2").tobytes())


class DtmfDetector:
    """Feed PCM16 mono; returns each key once when its tone has lasted `min_tone_blocks` blocks."""

    def __init__(self, sample_rate: int, tuning: DtmfTuning | None = None) -> None:
        self.tuning = tuning or DtmfTuning()
        self.sample_rate = sample_rate
        self._block = sample_rate * self.tuning.block_ms // 1000
        freqs = np.array(LOW_FREQS + HIGH_FREQS)
        # Goertzel's recurrence evaluates one DFT term per frequency; a precomputed basis does the same at once.
        n = np.arange(self._block)
        self._basis = np.exp(-2j * np.pi * np.outer(freqs, n) / sample_rate)
        self._pending = np.zeros(0, dtype=np.float64)
        self._candidate: str | None = None
        self._run = 0  # blocks the candidate has lasted
        self._gap = 0  # blocks without any key since the last reported one
        self._reported: str | None = None

    def accept(self, pcm16: bytes) -> list[str]:
        """Digits whose tones were confirmed in this audio, in order."""
        samples = np.frombuffer(pcm16, dtype="<i2").astype(np.float64) / 32768.0
        data = np.concatenate([self._pending, samples]) if self._pending.size else samples
        whole = len(data) - len(data) % self._block
        blocks = data[:whole].reshape(-1, self._block)
        # Every block's energy at once: a quiet block (most of a call) is no key without the tone analysis.
        energies = np.einsum("ij,ij->i", blocks, blocks) / self._block
        loud = energies >= self.tuning.min_level
        powers = iter(self._powers(blocks[loud]) if loud.any() else ())
        digits: list[str] = []
        for energy, is_loud in zip(energies.tolist(), loud.tolist(), strict=True):
            digit = self._update(self._classify(next(powers), energy) if is_loud else None)
            if digit is not None:
                digits.append(digit)
        self._pending = data[whole:]
        return digits

    def _powers(self, blocks: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Goertzel power at each of the eight DTMF frequencies (as one matrix product), per sample: a row per
        block."""
        spectrum = blocks @ self._basis.T
        return np.asarray(np.abs(spectrum) ** 2 * 2.0 / (self._block**2), dtype=np.float64)

    def _classify(self, power: npt.NDArray[np.float64], energy: float) -> str | None:
        """The key whose two tones dominate a block of mean power `energy` and tone powers `power`, if any."""
        row, col = int(np.argmax(power[:4])), int(np.argmax(power[4:]))
        low, high = power[row], power[4 + col]
        tune = self.tuning
        if min(low, high) < tune.min_level / 2:
            return None
        if abs(10 * np.log10(high / low)) > tune.twist_db:
            return None
        # Powers are each tone's mean square: together they must explain most of the block's energy.
        if low + high < tune.tone_share * energy:
            return None
        others_low = np.delete(power[:4], row)
        others_high = np.delete(power[4:], col)
        if others_low.max() * 4 > low or others_high.max() * 4 > high:
            return None
        return KEYPAD[row][col]

    def _update(self, key: str | None) -> str | None:
        """Debounce: a key counts once per press, after `min_tone_blocks` steady blocks."""
        if key is None:
            self._candidate, self._run = None, 0
            self._gap += 1
            if self._gap >= self.tuning.min_gap_blocks:
                self._reported = None
            return None
        self._gap = 0
        if key != self._candidate:
            self._candidate, self._run = key, 0
        self._run += 1
        if self._run >= self.tuning.min_tone_blocks and self._reported != key:
            self._reported = key
            return key
        return None
