"""One SIP call's RTP port as the `SocketIO` its `run_call` reads and writes."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

Address = tuple[str, int]


class RtpSocket(asyncio.DatagramProtocol):
    """`SocketIO` over one call's RTP port: datagrams from the caller's media address only (the first source
    seen, when the SDP's address is not where its packets come from: NAT); others are dropped and counted."""

    def __init__(self, remote: Address) -> None:
        self.remote = remote
        self.latched = False
        self.foreign = 0
        self.transport: asyncio.DatagramTransport | None = None
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=500)
        self.on_close: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Address) -> None:
        if addr[:2] != self.remote[:2]:
            if self.latched or addr[0] != self.remote[0]:
                self.foreign += 1
                return
            self.remote = (addr[0], addr[1])
        self.latched = True
        with contextlib.suppress(asyncio.QueueFull):  # a flood loses packets, not memory
            self._queue.put_nowait(data)

    def connection_lost(self, exc: Exception | None) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    async def receive(self) -> bytes | None:
        return await self._queue.get()

    async def write(self, data: bytes | str) -> None:
        if self.transport is not None and not self.transport.is_closing() and isinstance(data, bytes):
            self.transport.sendto(data, self.remote)

    async def close(self, code: int) -> None:
        """End the call's media; `on_close` (the server's BYE) runs first and may keep the socket open by
        returning True (the caller is being transferred: the transfer closes it when done)."""
        keep = False
        if self.on_close is not None:
            callback, self.on_close = self.on_close, None
            keep = bool(callback())
        if self.transport is not None and not keep:
            self.transport.close()
