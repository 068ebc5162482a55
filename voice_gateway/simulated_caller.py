"""A simulated caller: dials the gateway over the real protocol, plays caller audio and keys, records the bot.

`run_caller(line, script)` drives any `CallerLine`: a Twilio Media Streams websocket, an AudioSocket TCP
connection (`dial_twilio`, `dial_audiosocket`) or an in-memory line in tests (the lines: `caller_lines.py`).
Caller time is the clock: frame n of caller audio is at n * 20 ms, and bot audio is placed at the caller time
it arrived.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Protocol

from voice_gateway.audio import FrameBuffer, frame_bytes, rms
from voice_gateway.caller_lines import (  # the lines, importable from here as before
    AudioSocketLine,
    InMemoryTwilioLine,
    TwilioWebsocketLine,
    dial_audiosocket,
    dial_twilio,
)
from voice_gateway.events import AudioOut, Clear, Mark, TransportError

RATE = 8000
FRAME_BYTES = frame_bytes(RATE)


class CallerLine(Protocol):
    """The caller's end of a call: send caller audio and keys, read what the server sent back."""

    def send_audio(self, pcm16: bytes) -> None: ...

    def send_dtmf(self, digit: str) -> None: ...

    async def flush(self) -> None:
        """Write what was queued, and read whatever the server has sent meanwhile."""
        ...

    def events(self) -> list[AudioOut | Mark | Clear | TransportError]: ...

    @property
    def closed(self) -> bool: ...

    async def hang_up(self) -> None: ...


@dataclass(frozen=True)
class CallerScript:
    """What the caller does: audio from 0 ms (PCM16 8 kHz), keys at given times, then silence."""

    audio: bytes = b""
    keys: tuple[tuple[str, float], ...] = ()  # (digit, seconds into the call)
    tail_s: float = 20.0  # at most this much silence after the audio, for the bot to answer
    quiet_s: float | None = 1.5  # hang up once the bot has answered and then been silent this long
    realtime: bool = True
    speed: float = 8.0  # how much faster than real time a --fast call runs
    wait_for_greeting_s: float | None = None  # silent until the bot spoke and paused (at most this, wall clock)


# The bot quiet this long after speaking (caller time, and wall-clock time: a --fast call's sentence gaps are
# the server's synthesis time, stretched on the caller's clock): its greeting is over.
GREETING_PAUSE_MS = 1200.0
GREETING_PAUSE_WALL_S = 0.5


@dataclass
class CallerReport:
    """What happened, in caller time: the bot's audio track, when playback was cleared, marks and keys."""

    bot_audio: bytearray = field(default_factory=bytearray)
    clears_ms: list[float] = field(default_factory=list)
    marks: list[tuple[str, float]] = field(default_factory=list)
    keys_ms: list[tuple[str, float]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    hung_up_by_bot_ms: float | None = None
    sent_ms: float = 0.0  # caller audio sent, in caller time
    audio_start_ms: float = 0.0  # where the script's audio (and its keys' times) began: after the greeting
    wall_s: float = 0.0  # how long the call took on the wall clock (about sent_ms when paced in real time)

    def place(self, at_ms: float, pcm16: bytes) -> None:
        """Put bot audio at caller time `at_ms`, or right after the bot audio before it."""
        start = int(at_ms * RATE / 1000) * 2
        if start > len(self.bot_audio):
            self.bot_audio += bytes(start - len(self.bot_audio))
        self.bot_audio += pcm16

    def bot_spans_ms(self, *, min_gap_ms: int = 400) -> list[tuple[float, float]]:
        """Where the bot was audible (20 ms frames above -50 dBFS), gaps shorter than `min_gap_ms` joined."""
        frames = FrameBuffer(FRAME_BYTES).push(bytes(self.bot_audio))
        spans: list[tuple[float, float]] = []
        for index in (i for i, frame in enumerate(frames) if _loud(frame)):
            start, end = index * 20.0, index * 20.0 + 20.0
            if spans and start - spans[-1][1] < min_gap_ms:
                spans[-1] = (spans[-1][0], end)
            else:
                spans.append((start, end))
        return spans


async def run_caller(line: CallerLine, script: CallerScript) -> CallerReport:
    """Play the script frame by frame, echoing marks as the bot's audio 'plays'; stop when the bot hangs up."""
    report = CallerReport()
    frame_s = FRAME_BYTES / 2 / RATE
    loop = asyncio.get_running_loop()
    started = loop.time()
    pace = 1.0 if script.realtime else 1.0 / script.speed
    lead = 0
    if script.wait_for_greeting_s is not None:  # silence until the greeting is over
        spoke_ms: float | None = None
        spoke_wall = 0.0
        while loop.time() - started < script.wait_for_greeting_s and not line.closed:
            now_ms = lead * frame_s * 1000
            line.send_audio(bytes(FRAME_BYTES))
            await line.flush()
            if _collect(line, report, now_ms):
                spoke_ms, spoke_wall = now_ms, loop.time()
            lead += 1
            if (spoke_ms is not None and now_ms - spoke_ms >= GREETING_PAUSE_MS
                    and loop.time() - spoke_wall >= GREETING_PAUSE_WALL_S):
                break
            await asyncio.sleep(max(0.0, started + lead * frame_s * pace - loop.time()))
    offset_ms = report.audio_start_ms = lead * frame_s * 1000
    audio = script.audio + bytes(int(script.tail_s * RATE) * 2)
    frames = FrameBuffer(FRAME_BYTES).push(audio)
    keys = sorted(script.keys, key=lambda key: key[1])
    last_bot_ms = -1.0
    for index, frame in enumerate(frames, start=lead):
        now_ms = index * frame_s * 1000
        while keys and offset_ms + keys[0][1] * 1000 <= now_ms:
            digit = keys.pop(0)[0]
            line.send_dtmf(digit)
            report.keys_ms.append((digit, now_ms))
        line.send_audio(frame)
        await line.flush()
        report.sent_ms = now_ms + frame_s * 1000
        if _collect(line, report, now_ms):
            last_bot_ms = now_ms
        if line.closed:
            report.hung_up_by_bot_ms = now_ms
            break
        caller_done_ms = offset_ms + max([len(script.audio) / 2 / RATE * 1000] + [t * 1000 for _, t in script.keys])
        if script.quiet_s is not None and caller_done_ms < last_bot_ms < now_ms - script.quiet_s * 1000:
            break
        delay = started + (index + 1) * frame_s * pace - loop.time()
        await asyncio.sleep(max(0.0, delay))
    await line.hang_up()
    report.wall_s = loop.time() - started
    return report


def _loud(pcm16: bytes) -> bool:
    """Above -50 dBFS: speech rather than the silence between sentences."""
    return rms(pcm16) > 100


def _collect(line: CallerLine, report: CallerReport, now_ms: float) -> bool:
    """Take the server's events; True if the bot sent audio."""
    spoke = False
    for event in line.events():
        if isinstance(event, AudioOut):
            report.place(now_ms, event.pcm)
            spoke = spoke or _loud(event.pcm)
        elif isinstance(event, Mark):
            report.marks.append((event.name, now_ms))
        elif isinstance(event, Clear):
            report.clears_ms.append(now_ms)
        else:
            report.errors.append(str(event))
    return spoke


__all__ = ["AudioSocketLine", "CallerLine", "CallerReport", "CallerScript", "InMemoryTwilioLine", "TwilioWebsocketLine",
           "dial_audiosocket", "dial_twilio", "run_caller"]
