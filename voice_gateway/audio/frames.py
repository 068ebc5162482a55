"""Re-chunk a byte stream of any packet sizes into exact, fixed-size frames (20 ms by default)."""

from __future__ import annotations

from voice_gateway.audio.pcm import FRAME_MS, frame_bytes


class FrameBuffer:
    """Collects bytes and hands out whole frames of `size` bytes; the remainder waits for more."""

    def __init__(self, size: int, *, pad_byte: int = 0) -> None:
        if size <= 0:
            raise ValueError(f"frame size must be positive, got {size}")
        self.size = size
        self.pad_byte = pad_byte  # 0x00 is PCM16 silence; use 0xFF for mu-law
        self._pending = bytearray()

    @classmethod
    def for_pcm16(cls, sample_rate: int, frame_ms: int = FRAME_MS) -> FrameBuffer:
        """A buffer of PCM16 frames of `frame_ms` at `sample_rate` (320 bytes for 20 ms at 8 kHz)."""
        return cls(frame_bytes(sample_rate, frame_ms))

    @property
    def pending(self) -> int:
        """Bytes waiting for the rest of their frame."""
        return len(self._pending)

    def push(self, data: bytes) -> list[bytes]:
        """Add bytes; return every frame now complete, in order."""
        self._pending += data
        whole = len(self._pending) - len(self._pending) % self.size
        frames = [bytes(self._pending[i : i + self.size]) for i in range(0, whole, self.size)]
        del self._pending[:whole]
        return frames

    def flush(self) -> bytes | None:
        """The partial frame, padded to a whole frame with `pad_byte`, or None if nothing waits."""
        if not self._pending:
            return None
        frame = bytes(self._pending) + bytes([self.pad_byte]) * (self.size - len(self._pending))
        self._pending.clear()
        return frame

    def clear(self) -> None:
        """Drop the partial frame (barge-in)."""
        self._pending.clear()
