"""An asyncio TCP server for Asterisk AudioSocket: one codec, handler and task per connection."""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Any

from voice_gateway.transports.audiosocket import AudioSocketCodec
from voice_gateway.transports.connection import (
    CallConnection,
    CallGate,
    CallHandler,
    CallLimits,
    HandlerFactory,
    run_call,
)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9092
HANG_UP_WAIT_S = 5.0  # a hung-up call has this long to write its end (records, recording)
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
                 limits: CallLimits | None = None, gate: CallGate | None = None, reuse_port: bool = False) -> None:
        self.new_handler = new_handler
        self.host, self._port = host, port
        self.reuse_port = reuse_port  # several server processes on one port (SO_REUSEPORT)
        self.limits = limits
        self.gate = gate  # over its limit, a connection is hung up at once (AudioSocket's hang-up frame)
        self._server: asyncio.Server | None = None
        self._calls: set[asyncio.Task[None]] = set()
        self._connections: dict[asyncio.Task[Any], CallConnection] = {}

    @property
    def port(self) -> int:
        """The port actually listened on."""
        if self._server is None:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self._port,
                                                  reuse_port=True if self.reuse_port else None)

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

        def new_handler(connection: CallConnection) -> CallHandler:
            self._connections[task] = connection
            return self.new_handler(connection)

        try:
            await run_call(AudioSocketCodec(), StreamSocket(reader, writer), new_handler, self.limits)
        finally:
            self._calls.discard(task)
            self._connections.pop(task, None)
            if self.gate is not None:
                self.gate.leave()

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    async def close(self, drain_s: float = 0.0) -> None:
        """Stop listening; let the calls in progress finish for up to `drain_s` seconds, then hang up the rest
        (each call still ends properly: its `ended` record, its recording), and only then cancel what is left."""
        if self._server is not None:
            self._server.close()
        if self._calls and drain_s > 0:
            await asyncio.wait(set(self._calls), timeout=drain_s)
        for connection in list(self._connections.values()):
            with contextlib.suppress(OSError, RuntimeError):
                await connection.hang_up("server_shutdown")
        if self._calls:
            await asyncio.wait(set(self._calls), timeout=HANG_UP_WAIT_S)
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
