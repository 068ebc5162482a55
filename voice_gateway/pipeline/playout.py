"""Bot audio waiting to be sent, paced by the caller's stream: the call's clock is caller audio received."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from voice_gateway.audio.frames import FrameBuffer
from voice_gateway.audio.pcm import FRAME_MS


@dataclass(frozen=True)
class PlayFrame:
    """20 ms of bot audio at the transport's rate, to play from `at_ms` (call time)."""

    pcm: bytes
    at_ms: float


@dataclass(frozen=True)
class PlayMark:
    """A mark to send once the audio before it has been sent."""

    name: str


PlayItem = PlayFrame | PlayMark


class Playout:
    """Sans-I/O: audio and marks queue up; `due(now_ms)` hands out what may be sent `lead_ms` ahead of playback.

    Telephony peers send 20 ms of caller audio every 20 ms, so caller audio received is a clock that needs no
    timer and runs as fast as a simulated caller does. Sending only a little ahead keeps barge-in cheap:
    `clear()` drops what was not sent yet, and the peer's own buffer holds at most `lead_ms`.
    """

    def __init__(self, sample_rate: int, *, lead_ms: int = 100) -> None:
        self.sample_rate = sample_rate
        self.lead_ms = lead_ms
        self._frames = FrameBuffer.for_pcm16(sample_rate)
        self._queue: deque[bytes | PlayMark] = deque()
        self.play_until_ms = 0.0  # where the audio sent so far stops playing (call time)

    @property
    def pending(self) -> bool:
        """True while audio or marks wait to be sent."""
        return bool(self._queue) or self._frames.pending > 0

    def push_audio(self, pcm16: bytes) -> None:
        self._queue.extend(self._frames.push(pcm16))

    def push_mark(self, name: str) -> None:
        """A mark after the audio pushed so far (its partial frame is padded with silence)."""
        tail = self._frames.flush()
        if tail is not None:
            self._queue.append(tail)
        self._queue.append(PlayMark(name))

    def due(self, now_ms: float) -> list[PlayItem]:
        """Everything that may be sent now: frames that start before `now_ms + lead_ms`, and marks between them."""
        out: list[PlayItem] = []
        while self._queue:
            head = self._queue[0]
            if isinstance(head, PlayMark):
                self._queue.popleft()
                out.append(head)
                continue
            start = max(self.play_until_ms, now_ms)
            if start >= now_ms + self.lead_ms:
                break
            self._queue.popleft()
            out.append(PlayFrame(head, start))
            self.play_until_ms = start + FRAME_MS
        return out

    def clear(self, now_ms: float) -> list[str]:
        """Barge-in: drop the queue; returns the names of the marks that will never be sent."""
        dropped = [item.name for item in self._queue if isinstance(item, PlayMark)]
        self._queue.clear()
        self._frames.clear()
        self.play_until_ms = min(self.play_until_ms, now_ms)
        return dropped
