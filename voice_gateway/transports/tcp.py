"""An asyncio TCP server for Asterisk AudioSocket: one codec, handler and task per connection."""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

from voice_gateway.transports.audiosocket import AudioSocketCodec
from voice_gateway.transports.connection import CallGate, CallLimits, HandlerFactory, run_call

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9092
HANGUP_FRAME = b"\x00\x00\x00"  # AudioSocket kind 0x00 (hang up), no payload


class StreamSocket:
    """`SocketIO` over an asyncio stream pair."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, read_size: int = 4096) -> None:
        self.reader, self.writer, self.read_size = reader, writer, read_size

    async def receive(self) -> bytes | None:
        try:
            data = await self.reader.read(self.read_size)
        except (OSError, asyncio.IncompleteReadError):
            return None
        return data or None

    async def write(self, data: bytes | str) -> None:
        self.writer.write(data.encode() if isinstance(data, str) else data)
        await self.writer.drain()

    async def close(self, code: int) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


class AudioSocketServer:
    """Listens for Asterisk's `AudioSocket(uuid,host:port)` connections; `port=0` picks a free port."""

    def __init__(self, new_handler: HandlerFactory, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                 limits: CallLimits | None = None, gate: CallGate | None = None) -> None:
        self.new_handler = new_handler
        self.host, self._port = host, port
        self.limits = limits
        self.gate = gate  # over its limit, a connection is hung up at once (AudioSocket's hang-up frame)
        self._server: asyncio.Server | None = None
        self._calls: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The port actually listened on."""
        if self._server is None:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self._port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if self.gate is not None and not self.gate.enter("audiosocket"):
            writer.write(HANGUP_FRAME)
            with contextlib.suppress(OSError):
                await writer.drain()
            writer.close()
            return
        self._calls.add(task)
        try:
            await run_call(AudioSocketCodec(), StreamSocket(reader, writer), self.new_handler, self.limits)
        finally:
            self._calls.discard(task)
            if self.gate is not None:
                self.gate.leave()

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    async def close(self) -> None:
        """Stop listening and end the calls in progress."""
        if self._server is not None:
            self._server.close()
        for task in list(self._calls):
            task.cancel()
        await asyncio.gather(*self._calls, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> AudioSocketServer:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.close()
