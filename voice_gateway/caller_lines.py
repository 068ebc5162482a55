"""The caller's end of a line, over the real protocols: a Twilio Media Streams websocket (`dial_twilio`), an
Asterisk AudioSocket TCP connection (`dial_audiosocket`), and an in-memory Twilio line for tests. Each is a
`simulated_caller.CallerLine`; `run_caller` drives any of them."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

from voice_gateway.events import AudioOut, CallEnded, Clear, Mark, TransportError
from voice_gateway.transports import CallConnection, HandlerFactory, TwilioCallerCodec, TwilioCodec, encode_frame
from voice_gateway.transports.audiosocket import Kind

RATE = 8000


class _SocketLine:
    """What the socket-backed caller lines share: the events received and whether the line closed."""

    def __init__(self) -> None:
        self._closed = False
        self._events: list[AudioOut | Mark | Clear | TransportError] = []
        self.call_id = ""  # the id the server gives the call (Twilio's callSid, AudioSocket's UUID)

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
        line.call_id = codec.call_sid
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
async def dial_audiosocket(
    host: str, port: int, *, call_uuid: uuid.UUID | None = None
) -> AsyncIterator[AudioSocketLine]:
    """Connect like Asterisk's `AudioSocket(uuid,host:port)` and send the call's UUID (random unless given, e.g.
    `audiosocket_caller.caller_uuid(...)` as the documented dialplan builds it)."""
    reader, writer = await asyncio.open_connection(host, port)
    call_uuid = call_uuid or uuid.uuid4()
    writer.write(encode_frame(Kind.UUID, call_uuid.bytes))
    line = AudioSocketLine(reader, writer)
    line.call_id = str(call_uuid)
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

    def __init__(self, new_handler: HandlerFactory, *, caller: str = "+15550100000", called: str = "") -> None:
        self.codec = TwilioCallerCodec(call_sid=f"CA{uuid.uuid4().hex}",
                                       parameters={"caller": caller, "called": called})
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
