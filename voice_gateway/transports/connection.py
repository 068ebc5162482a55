"""Running one call: move bytes between a socket and its codec, and events to the call's handler.

This is the only asyncio in the transports. Each call has its own codec, handler, event queue and
dispatcher task, so a slow handler delays its own events only, never another call's or the socket reads.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from voice_gateway.events import (
    AudioIn,
    AudioOut,
    CallEnded,
    Clear,
    ErrorKind,
    HangUp,
    InboundEvent,
    Mark,
    OutboundEvent,
    TransportError,
)
from voice_gateway.transports.base import Codec

log = logging.getLogger(__name__)

# Websocket close codes (RFC 6455) for fatal transport errors; anything else fatal is 1008.
NORMAL_CLOSURE = 1000
TRY_AGAIN_LATER = 1013  # every line busy
CLOSE_CODES = {ErrorKind.TOO_LARGE: 1009, ErrorKind.UNSUPPORTED: 1003, ErrorKind.FORBIDDEN: 1008}
POLICY_VIOLATION = 1008


class SocketIO(Protocol):
    """The few socket operations a call needs; websocket and TCP adapters implement it."""

    async def receive(self) -> bytes | str | None:
        """The next message or chunk; None once the peer has gone."""
        ...

    async def write(self, data: bytes | str) -> None: ...

    async def close(self, code: int) -> None: ...


class CallHandler(Protocol):
    """What the call pipeline implements: it is given each inbound event of its call, in order."""

    async def on_event(self, event: InboundEvent) -> None: ...


class EventQueue:
    """A call's inbound events waiting for its handler. At most `max_audio` audio frames wait (30 s of 20 ms
    frames, under 1 MB): a handler that falls further behind loses the oldest audio, counted in
    `dropped_audio`, instead of memory growing with the call; control events (start, keys, marks, errors, the
    end) are never dropped."""

    def __init__(self, max_audio: int = 1500) -> None:
        self.max_audio = max_audio
        self.dropped_audio = 0
        self._items: collections.deque[InboundEvent | None] = collections.deque()
        self._audio = 0
        self._ready = asyncio.Event()

    def put_nowait(self, event: InboundEvent | None) -> None:
        if isinstance(event, AudioIn):
            if self._audio >= self.max_audio:
                oldest = next(i for i, item in enumerate(self._items) if isinstance(item, AudioIn))
                del self._items[oldest]
                self._audio -= 1
                self.dropped_audio += 1
                if self.dropped_audio in (1, 50) or self.dropped_audio % 1000 == 0:
                    log.warning("call handler behind: %d audio frames dropped", self.dropped_audio)
            self._audio += 1
        self._items.append(event)
        self._ready.set()

    async def get(self) -> InboundEvent | None:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        event = self._items.popleft()
        if isinstance(event, AudioIn):
            self._audio -= 1
        return event

    def qsize(self) -> int:
        return len(self._items)


class CallConnection:
    """One call's way back to the caller: send audio, marks, clear and hang-up through its codec."""

    def __init__(self, codec: Codec, io: SocketIO) -> None:
        self.codec = codec
        self._io = io
        self._write_lock = asyncio.Lock()
        self._queue = EventQueue()
        self._close_code = NORMAL_CLOSURE
        self.closed = False

    @property
    def transport(self) -> str:
        return self.codec.transport

    @property
    def sample_rate(self) -> int:
        """The PCM16 rate the transport carries (8000 for telephony; the browser's declared rate)."""
        return self.codec.sample_rate

    async def send(self, command: OutboundEvent) -> None:
        """Carry out a command; after the call closed it is dropped (pipelines may lag behind a hang-up)."""
        if self.closed:
            return
        self.codec.send(command)
        self._collect()
        await self._flush()

    async def send_audio(self, pcm: bytes) -> None:
        await self.send(AudioOut(pcm, self.sample_rate))

    async def send_mark(self, name: str) -> None:
        await self.send(Mark(name))

    async def send_clear(self) -> None:
        await self.send(Clear())

    async def hang_up(self, reason: str = "local_hangup") -> None:
        await self.send(HangUp(reason))

    def _collect(self) -> None:
        """Move the codec's new events to the handler's queue, logging rejected input."""
        for event in self.codec.events_received():
            if isinstance(event, TransportError):
                log.warning("%s call: %s", self.transport, event)
                if event.fatal:
                    self._close_code = CLOSE_CODES.get(event.kind, POLICY_VIOLATION)
            self._queue.put_nowait(event)

    async def _flush(self) -> None:
        async with self._write_lock:
            try:
                for data in self.codec.data_to_send():
                    if not self.closed:
                        await self._io.write(data)
            except (OSError, RuntimeError) as exc:  # the peer went away mid-write
                log.info("%s call: write failed: %r", self.transport, exc)
                self.codec.receive_eof()
                self._collect()
                await self._close()
        if self.codec.close_expected:
            await self._close()

    async def _close(self) -> None:
        if not self.closed:
            self.closed = True
            with contextlib.suppress(OSError, RuntimeError):
                await self._io.close(self._close_code)

    async def _dispatch(self, handler: CallHandler) -> None:
        """Give the handler its events, one at a time, until the call is over."""
        while (event := await self._queue.get()) is not None:
            try:
                await handler.on_event(event)
            except Exception:
                log.exception("%s call: handler failed on %s; hanging up", self.transport, type(event).__name__)
                await self.hang_up("handler_error")
                self._collect()
            if isinstance(event, CallEnded):
                return


HandlerFactory = Callable[[CallConnection], CallHandler]


async def _watch(codec: Codec, connection: CallConnection, limits: CallLimits) -> None:
    """Close a connection that has not started its call in time; hang up a call that went on too long."""
    await asyncio.sleep(min(limits.start_timeout_s, limits.max_call_s))
    if not codec.started:
        log.warning("%s connection: no start message in %.0f s; closed", codec.transport, limits.start_timeout_s)
        await connection._close()
        return
    await asyncio.sleep(max(0.0, limits.max_call_s - limits.start_timeout_s))
    log.warning("%s call: longer than %.0f s; hanging up", codec.transport, limits.max_call_s)
    await connection.hang_up("max_call_length")


class CallGate:
    """At most `max_calls` calls at once in this process; the transports ask before starting one."""

    def __init__(self, max_calls: int, on_reject: Callable[[str], None] | None = None) -> None:
        self.max_calls = max_calls
        self.active = 0
        self.rejected = 0
        self._on_reject = on_reject

    def enter(self, transport: str) -> bool:
        """Room for one more call (counted until `leave`)? False: the caller gets a busy signal."""
        if self.active >= self.max_calls:
            self.rejected += 1
            log.warning("%s call refused: all %d lines are busy", transport, self.max_calls)
            if self._on_reject is not None:
                self._on_reject(transport)
            return False
        self.active += 1
        return True

    def leave(self) -> None:
        self.active = max(0, self.active - 1)


@dataclass(frozen=True)
class CallLimits:
    """How long a connection may take to start its call, and how long a call may last."""

    start_timeout_s: float = 10.0
    max_call_s: float = 3600.0


async def run_call(codec: Codec, io: SocketIO, new_handler: HandlerFactory, limits: CallLimits | None = None,
                   gate: CallGate | None = None) -> None:
    """Serve one call until either side ends it; returns once its handler has seen the last event. A connection
    that sends no start message within `limits.start_timeout_s` is closed; a call longer than `max_call_s` is
    hung up (reason `max_call_length`). With a `gate`, the call takes a line when its start message arrives (a
    connection that never starts holds none); with every line busy it is closed with 1013 (try again later) and
    its handler never hears of it."""
    limits = limits or CallLimits()
    connection = CallConnection(codec, io)
    dispatcher = asyncio.create_task(connection._dispatch(new_handler(connection)))
    watchdog = asyncio.create_task(_watch(codec, connection, limits))  # one timer per call, not one per frame
    admitted = refused = False
    try:
        connection._collect()  # what the codec knows before any data (an RTP call starts when it is answered)
        await connection._flush()
        while not connection.closed:
            data = await io.receive()
            if data is None:
                break
            codec.receive_data(data)
            if gate is not None and codec.started and not admitted:
                if not gate.enter(codec.transport):
                    refused = True
                    connection._close_code = TRY_AGAIN_LATER
                    break
                admitted = True
            connection._collect()
            await connection._flush()
    except asyncio.CancelledError:
        dispatcher.cancel()  # server shutdown: do not wait for a handler that may never finish
        raise
    finally:
        watchdog.cancel()
        codec.receive_eof()
        if refused:
            codec.events_received()  # the refused call's start and end: not for the handler
        else:
            connection._collect()
        await connection._close()
        connection._queue.put_nowait(None)
        try:
            await dispatcher
        finally:
            if admitted and gate is not None:
                gate.leave()
