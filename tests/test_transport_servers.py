"""The asyncio adapters on real sockets (127.0.0.1): AudioSocket over TCP, Twilio and softphone over websockets."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from voice_gateway.events import AudioIn, AudioOut, CallEnded, CallStarted, Dtmf, InboundEvent, Mark, MarkPlayed
from voice_gateway.transports import (
    AudioSocketServer,
    CallConnection,
    CallHandler,
    TwilioCallerCodec,
    serve_softphone,
    serve_twilio,
)

HELLO = b"\x01\x00\x10" + bytes(range(16))
AUDIO = b"\x10\x01\x40" + b"\x07\x00" * 160
TIMEOUT = 5.0


class EchoHandler:
    """Echoes caller audio, answers a key press with a mark, and can be told to stall on the call's start."""

    def __init__(self, connection: CallConnection, stall: asyncio.Event | None = None) -> None:
        self.connection = connection
        self.stall = stall
        self.events: list[InboundEvent] = []
        self.ended = asyncio.Event()

    async def on_event(self, event: InboundEvent) -> None:
        self.events.append(event)
        if isinstance(event, CallStarted) and self.stall is not None:
            await self.stall.wait()
        elif isinstance(event, AudioIn):
            await self.connection.send_audio(event.pcm)
        elif isinstance(event, Dtmf):
            await self.connection.send_mark(f"key-{event.digit}")
        elif isinstance(event, CallEnded):
            self.ended.set()


class Handlers:
    """A handler factory that keeps what it made; the first `stalled` calls stall until released."""

    def __init__(self, stalled: int = 0) -> None:
        self.made: list[EchoHandler] = []
        self.release = asyncio.Event()
        self.stalled = stalled

    def __call__(self, connection: CallConnection) -> CallHandler:
        stall = self.release if len(self.made) < self.stalled else None
        self.made.append(EchoHandler(connection, stall))
        return self.made[-1]


async def read_frame(reader: asyncio.StreamReader) -> bytes:
    header = await reader.readexactly(3)
    return header + await reader.readexactly(int.from_bytes(header[1:], "big"))


def test_audiosocket_server_echoes_and_hangs_up_over_tcp() -> None:
    async def scenario() -> None:
        handlers = Handlers()
        async with AudioSocketServer(handlers, port=0) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(HELLO + AUDIO[:100])  # a frame split across writes
            await writer.drain()
            writer.write(AUDIO[100:] + b"\x03\x00\x019")
            assert await asyncio.wait_for(read_frame(reader), TIMEOUT) == AUDIO
            writer.write(b"\x00\x00\x00")
            await writer.drain()
            assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""  # the server closed the call
            handler = handlers.made[0]
            await asyncio.wait_for(handler.ended.wait(), TIMEOUT)
            assert [type(e) for e in handler.events] == [CallStarted, AudioIn, Dtmf, MarkPlayed, CallEnded]
            assert handler.events[-2:] == [MarkPlayed("key-9"), CallEnded("hangup")]
            writer.close()

    asyncio.run(asyncio.wait_for(scenario(), 20))


def test_a_stalled_call_does_not_delay_another() -> None:
    async def scenario() -> None:
        handlers = Handlers(stalled=1)
        async with AudioSocketServer(handlers, port=0) as server:
            slow_reader, slow_writer = await asyncio.open_connection("127.0.0.1", server.port)
            slow_writer.write(HELLO + AUDIO)
            await slow_writer.drain()
            while not handlers.made:
                await asyncio.sleep(0.01)
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(HELLO + AUDIO)
            await writer.drain()
            assert await asyncio.wait_for(read_frame(reader), 2.0) == AUDIO  # answered while the other stalls
            assert [type(e) for e in handlers.made[0].events] == [CallStarted]
            handlers.release.set()
            assert await asyncio.wait_for(read_frame(slow_reader), TIMEOUT) == AUDIO
            for w in (writer, slow_writer):
                w.close()

    asyncio.run(asyncio.wait_for(scenario(), 20))


def test_a_failing_handler_hangs_up_its_call_only() -> None:
    class Broken:
        async def on_event(self, event: InboundEvent) -> None:
            if isinstance(event, AudioIn):
                raise RuntimeError("pipeline bug")

    async def scenario() -> None:
        async with AudioSocketServer(lambda connection: Broken(), port=0) as server:
            for _ in range(2):  # the server survives and takes the next call
                reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
                writer.write(HELLO + AUDIO)
                assert await asyncio.wait_for(reader.read(), TIMEOUT) == b"\x00\x00\x00"
                writer.close()

    asyncio.run(asyncio.wait_for(scenario(), 20))


@asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[int]:
    """Run the app under uvicorn on a free loopback port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await task


def websocket_app(handlers: Handlers) -> Starlette:
    async def twilio(websocket: WebSocket) -> None:
        await serve_twilio(websocket, handlers)

    async def phone(websocket: WebSocket) -> None:
        await serve_softphone(websocket, handlers, call_id="phone-test")

    return Starlette(routes=[WebSocketRoute("/media/twilio", twilio), WebSocketRoute("/phone/ws", phone)])


def test_twilio_media_stream_over_a_real_websocket() -> None:
    async def scenario() -> None:
        handlers = Handlers()
        async with serving(websocket_app(handlers)) as port:
            twilio = TwilioCallerCodec(call_sid="CA00000000000000000000000000000009", parameters={"caller": "+15550009999"})
            async with connect(f"ws://127.0.0.1:{port}/media/twilio") as ws:
                twilio.connect()
                twilio.send_audio(b"\x00\x00" * 160)
                twilio.send_dtmf("4")
                for message in twilio.data_to_send():
                    await ws.send(message)
                for _ in range(2):
                    twilio.receive_data(await asyncio.wait_for(ws.recv(), TIMEOUT))
                assert twilio.events_received() == [AudioOut(b"\x00\x00" * 160, 8000), Mark("key-4")]
                twilio.stop()
                await ws.send(twilio.data_to_send()[0])
                await asyncio.wait_for(ws.wait_closed(), TIMEOUT)
                assert ws.close_code == 1000
            handler = handlers.made[0]
            await asyncio.wait_for(handler.ended.wait(), TIMEOUT)
            started = handler.events[0]
            assert isinstance(started, CallStarted) and (started.call_id, started.caller) == ("CA00000000000000000000000000000009", "+15550009999")
            assert handler.events[-1] == CallEnded("stop")

            async with connect(f"ws://127.0.0.1:{port}/media/twilio") as ws:  # a violation closes with a code
                await ws.send(json.dumps({"event": "media", "media": {"payload": "A" * 70_000}}))
                with pytest.raises(ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), TIMEOUT)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_softphone_over_a_real_websocket() -> None:
    async def scenario() -> None:
        handlers = Handlers()
        async with serving(websocket_app(handlers)) as port, connect(f"ws://127.0.0.1:{port}/phone/ws") as ws:
            await ws.send(json.dumps({"type": "start", "caller": "web", "sampleRate": 16000}))
            await ws.send(b"\x01\x02" * 320)
            await ws.send(json.dumps({"type": "dtmf", "digit": "#"}))
            assert await asyncio.wait_for(ws.recv(), TIMEOUT) == b"\x01\x02" * 320
            assert json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT)) == {"type": "mark", "name": "key-#"}
            await ws.send(json.dumps({"type": "hangup"}))
            await asyncio.wait_for(ws.wait_closed(), TIMEOUT)
            handler = handlers.made[0]
            await asyncio.wait_for(handler.ended.wait(), TIMEOUT)
            assert handler.events[0] == CallStarted(
                "phone-test", "softphone", 16000, caller="web", stream_id="phone-test"
            )
            assert handler.events[-1] == CallEnded("hangup")

    asyncio.run(asyncio.wait_for(scenario(), 30))
