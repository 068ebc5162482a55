"""A simulated caller: dials the gateway over the real protocol, plays caller audio and keys, records the bot.

`run_caller(line, script)` drives any `CallerLine`: a Twilio Media Streams websocket, an AudioSocket TCP
connection (`dial_twilio`, `dial_audiosocket`) or an in-memory line in tests. Caller time is the clock:
frame n of caller audio is at n * 20 ms, and bot audio is placed at the caller time it arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from voice_gateway.audio import FrameBuffer, frame_bytes
from voice_gateway.events import AudioOut, CallEnded, Clear, Mark, TransportError
from voice_gateway.transports import CallConnection, HandlerFactory, TwilioCallerCodec, TwilioCodec, encode_frame
from voice_gateway.transports.audiosocket import Kind

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
    wall_s: float = 0.0  # how long the call took on the wall clock (about sent_ms when paced in real time)

    def place(self, at_ms: float, pcm16: bytes) -> None:
        """Put bot audio at caller time `at_ms`, or right after the bot audio before it."""
        start = int(at_ms * RATE / 1000) * 2
        if start > len(self.bot_audio):
            self.bot_audio += bytes(start - len(self.bot_audio))
        self.bot_audio += pcm16

    def bot_spans_ms(self, *, min_gap_ms: int = 400) -> list[tuple[float, float]]:
        """Where the bot was audible (20 ms frames above -50 dBFS), gaps shorter than `min_gap_ms` joined."""
        samples = np.frombuffer(bytes(self.bot_audio[: len(self.bot_audio) // FRAME_BYTES * FRAME_BYTES]), "<i2")
        loud = np.sqrt(np.mean(samples.reshape(-1, FRAME_BYTES // 2).astype(np.float64) ** 2, axis=1)) > 100
        spans: list[tuple[float, float]] = []
        for index in np.flatnonzero(loud):
            start, end = index * 20.0, index * 20.0 + 20.0
            if spans and start - spans[-1][1] < min_gap_ms:
                spans[-1] = (spans[-1][0], end)
            else:
                spans.append((start, end))
        return spans


async def run_caller(line: CallerLine, script: CallerScript) -> CallerReport:
    """Play the script frame by frame, echoing marks as the bot's audio 'plays'; stop when the bot hangs up."""
    report = CallerReport()
    audio = script.audio + bytes(int(script.tail_s * RATE) * 2)
    frames = FrameBuffer(FRAME_BYTES).push(audio)
    keys = sorted(script.keys, key=lambda key: key[1])
    frame_s = FRAME_BYTES / 2 / RATE
    loop = asyncio.get_running_loop()
    started = loop.time()
    last_bot_ms = -1.0
    for index, frame in enumerate(frames):
        now_ms = index * frame_s * 1000
        while keys and keys[0][1] * 1000 <= now_ms:
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
        caller_done_ms = max([len(script.audio) / 2 / RATE * 1000] + [t * 1000 for _, t in script.keys])
        if script.quiet_s is not None and caller_done_ms < last_bot_ms < now_ms - script.quiet_s * 1000:
            break
        pace = 1.0 if script.realtime else 1.0 / script.speed
        delay = started + (index + 1) * frame_s * pace - loop.time()
        await asyncio.sleep(max(0.0, delay))
    await line.hang_up()
    report.wall_s = loop.time() - started
    return report


def _loud(pcm16: bytes) -> bool:
    """Above -50 dBFS: speech rather than the silence between sentences."""
    samples = np.frombuffer(pcm16[: len(pcm16) // 2 * 2], "<i2").astype(np.float64)
    return bool(samples.size) and float(np.sqrt(np.mean(samples**2))) > 100


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


class _SocketLine:
    """What the socket-backed caller lines share: the events received and whether the line closed."""

    def __init__(self) -> None:
        self._closed = False
        self._events: list[AudioOut | Mark | Clear | TransportError] = []

    def events(self) -> list[AudioOut | Mark | Clear | TransportError]:
        events, self._events = self._events, []
        return events

    @property
    def closed(self) -> bool:
        return self._closed


class TwilioWebsocketLine(_SocketLine):
    """Twilio's side of a Media Stream over a real websocket (`websockets` client)."""

    def __init__(self, websocket: object, codec: TwilioCallerCodec) -> None:
        from websockets.asyncio.client import ClientConnection

        assert isinstance(websocket, ClientConnection)
        super().__init__()
        self._ws = websocket
        self.codec = codec
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for message in self._ws:
                self.codec.receive_data(message)
                for event in self.codec.events_received():
                    if isinstance(event, Mark):
                        self.codec.send_mark_played(event.name)  # played as soon as received: we never lag
                    self._events.append(event)
        except ConnectionClosed:
            pass
        self._closed = True

    def send_audio(self, pcm16: bytes) -> None:
        self.codec.send_audio(pcm16)

    def send_dtmf(self, digit: str) -> None:
        self.codec.send_dtmf(digit)

    async def flush(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            for message in self.codec.data_to_send():
                await self._ws.send(message)
        except ConnectionClosed:
            self._closed = True
        await asyncio.sleep(0)

    async def hang_up(self) -> None:
        self.codec.stop()
        with contextlib.suppress(Exception):
            await self.flush()
            await self._ws.close()
        self._reader.cancel()


@contextlib.asynccontextmanager
async def dial_twilio(url: str, *, caller: str = "+15550100000") -> AsyncIterator[TwilioWebsocketLine]:
    """Open `ws://HOST:PORT/media/twilio` the way Twilio does and send `connected` + `start`."""
    from websockets.asyncio.client import connect

    sid = uuid.uuid4().hex
    codec = TwilioCallerCodec(
        stream_sid=f"MZ{sid}", call_sid=f"CA{sid}", parameters={"caller": caller, "called": "+18005550100"}
    )
    async with connect(url, max_size=2**20) as websocket:
        line = TwilioWebsocketLine(websocket, codec)
        codec.connect()
        await line.flush()
        try:
            yield line
        finally:
            await line.hang_up()


class AudioSocketLine(_SocketLine):
    """Asterisk's side of an AudioSocket call over TCP."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        super().__init__()
        self._reader_stream, self._writer = reader, writer
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            while True:
                header = await self._reader_stream.readexactly(3)
                payload = await self._reader_stream.readexactly(int.from_bytes(header[1:3], "big"))
                if header[0] == Kind.AUDIO:
                    self._events.append(AudioOut(payload, RATE))
                elif header[0] == Kind.HANGUP:
                    break
        except (asyncio.IncompleteReadError, OSError):
            pass
        self._closed = True

    def send_audio(self, pcm16: bytes) -> None:
        self._writer.write(encode_frame(Kind.AUDIO, pcm16))

    def send_dtmf(self, digit: str) -> None:
        self._writer.write(encode_frame(Kind.DTMF, digit.encode("ascii")))

    async def flush(self) -> None:
        try:
            await self._writer.drain()
        except OSError:
            self._closed = True
        await asyncio.sleep(0)

    async def hang_up(self) -> None:
        with contextlib.suppress(OSError):
            self._writer.write(encode_frame(Kind.HANGUP))
            await self._writer.drain()
            self._writer.close()
        self._task.cancel()


@contextlib.asynccontextmanager
async def dial_audiosocket(host: str, port: int) -> AsyncIterator[AudioSocketLine]:
    """Connect like Asterisk's `AudioSocket(uuid,host:port)` and send the call's UUID."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(encode_frame(Kind.UUID, uuid.uuid4().bytes))
    line = AudioSocketLine(reader, writer)
    try:
        yield line
    finally:
        await line.hang_up()


class _MemorySocket:
    """The server's `SocketIO` in memory: what the server writes goes straight to the caller's codec."""

    def __init__(self, caller: TwilioCallerCodec, events: list[AudioOut | Mark | Clear | TransportError]) -> None:
        self.caller, self._events = caller, events
        self.closed = False

    async def receive(self) -> bytes | str | None:
        raise RuntimeError("in-memory lines are driven by flush()")

    async def write(self, data: bytes | str) -> None:
        self.caller.receive_data(data)
        for event in self.caller.events_received():
            if isinstance(event, Mark):
                self.caller.send_mark_played(event.name)
            self._events.append(event)

    async def close(self, code: int) -> None:
        self.closed = True


class InMemoryTwilioLine:
    """A Twilio call wired straight to a handler, in lock step: each flush waits until the handler is done.

    Tests use it to run a call in audio time, as fast as the machine allows, with no sockets.
    """

    def __init__(self, new_handler: HandlerFactory, *, caller: str = "+15550100000") -> None:
        self.codec = TwilioCallerCodec(parameters={"caller": caller})
        self.server = TwilioCodec()
        self._events: list[AudioOut | Mark | Clear | TransportError] = []
        self._socket = _MemorySocket(self.codec, self._events)
        self.connection = CallConnection(self.server, self._socket)
        self.handler = new_handler(self.connection)
        self._ended = False
        self.codec.connect()

    def send_audio(self, pcm16: bytes) -> None:
        self.codec.send_audio(pcm16)

    def send_dtmf(self, digit: str) -> None:
        self.codec.send_dtmf(digit)

    async def flush(self) -> None:
        while messages := self.codec.data_to_send():
            for message in messages:
                self.server.receive_data(message)
                for event in self.server.events_received():
                    await self.handler.on_event(event)
        if self._socket.closed and not self._ended:
            self._ended = True
            await self.handler.on_event(CallEnded("local_hangup"))

    def events(self) -> list[AudioOut | Mark | Clear | TransportError]:
        events = self._events[:]
        self._events.clear()
        return events

    @property
    def closed(self) -> bool:
        return self._socket.closed

    async def hang_up(self) -> None:
        if not self._ended:
            self.codec.stop()
            await self.flush()
            self._ended = True
