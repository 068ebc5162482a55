"""One SIP call's RTP port as the `SocketIO` its `run_call` reads and writes."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from voice_gateway.transports.sip.rtcp import RtcpReader, sender_report
from voice_gateway.transports.sip.rtp import RtpCodec

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


class RtcpChannel(asyncio.DatagramProtocol):
    """One call's RTCP port (the RTP port + 1 when free): our compound SR + SDES every `every_s` to the peer's
    RTCP address (its a=rtcp, else its RTP port + 1); what the peer reports of our stream in `reader`."""

    def __init__(self, codec: RtpCodec | None, remote: Address, cname: str) -> None:
        self.codec, self.remote, self.cname = codec, remote, cname  # a call we place: its codec once answered
        self.reader = RtcpReader(codec.ssrc if codec is not None else 0)
        self.transport: asyncio.DatagramTransport | None = None
        self.sent = 0
        self._task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Address) -> None:
        if addr[0] == self.remote[0]:
            self.reader.receive(data)

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def send_report(self) -> None:
        codec = self.codec
        if self.transport is None or self.transport.is_closing() or self.remote[1] == 0 or codec is None:
            return
        self.reader.our_ssrc = codec.ssrc
        self.transport.sendto(sender_report(codec.ssrc, rtp_timestamp=codec.rtp_timestamp, packets=codec.packets_sent,
                                            octets=codec.octets_sent, cname=self.cname, stats=codec.stats),
                              self.remote)
        self.sent += 1

    def start(self, every_s: float = 5.0) -> None:
        async def reports() -> None:
            while True:
                await asyncio.sleep(every_s)
                self.send_report()

        self._task = asyncio.get_running_loop().create_task(reports(), name="rtcp")

    def close(self) -> None:
        """The call ended: a last report, then the port is closed (once)."""
        if self._task is not None:
            self._task.cancel()
        if self.transport is not None and not self.transport.is_closing():
            self.send_report()
            self.transport.close()

    def summary(self) -> str:
        if self.codec is None:
            return "no media"
        stats, peer = self.codec.stats, self.reader.latest
        text = f"received {stats.received} of {stats.expected} packets, jitter {stats.jitter / 8:.1f} ms"
        if peer is not None:
            text += (f"; the peer lost {peer.cumulative_lost} of ours ({peer.fraction_lost:.0%} lately), "
                     f"jitter {peer.jitter_ms:.1f} ms")
        return text


async def open_rtcp(host: str, rtp_port: int, codec: RtpCodec | None, remote: Address,
                    cname: str) -> RtcpChannel | None:
    """The call's RTCP port: RTP + 1 if it is free, else any (said in SDP's a=rtcp); None if none can be had."""
    loop = asyncio.get_running_loop()
    for port in (rtp_port + 1, 0):
        channel = RtcpChannel(codec, remote, cname)
        try:
            await loop.create_datagram_endpoint(lambda: channel, local_addr=(host, port))  # noqa: B023
        except OSError:
            continue
        return channel
    return None
