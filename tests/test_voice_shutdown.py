"""Stopping the server (SIGTERM) in the middle of an AudioSocket call: no new call is taken, the call in
progress gets its drain time and then a proper hang-up (Asterisk's hang-up frame), its `ended` record says
why, and the server exits without a traceback (the ASR workers stop cleanly)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from tests.voice_helpers import voice_server
from voice_gateway.call_log import LifecycleKind, read_call_log
from voice_gateway.transports.audiosocket import Kind, encode_frame


async def a_call_cut_by_shutdown(port: int, call_id: uuid.UUID, stop_server: asyncio.Event) -> list[int]:
    """Dial, stream silence, ask for the server to stop after 3 s; the frame kinds the server sent, in order."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(encode_frame(Kind.UUID, call_id.bytes))
    kinds: list[int] = []

    async def talk() -> None:
        for n in range(3000):
            writer.write(encode_frame(Kind.AUDIO, bytes(320)))
            await writer.drain()
            if n == 150:
                stop_server.set()
            await asyncio.sleep(0.02)

    sender = asyncio.create_task(talk())
    try:
        while header := await asyncio.wait_for(reader.readexactly(3), 60):
            kinds.append(header[0])
            await reader.readexactly(int.from_bytes(header[1:], "big"))
            if header[0] == Kind.HANGUP:
                break
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        sender.cancel()
        writer.close()
    return kinds


def test_a_call_in_progress_ends_properly_when_the_server_stops(tmp_path: Path) -> None:
    call_id = uuid.uuid4()
    with voice_server(tmp_path, {"CALLPILOT_SHUTDOWN_DRAIN_S": "1"}) as server:
        assert server.process is not None

        async def go() -> list[int]:
            stop = asyncio.Event()
            call = asyncio.create_task(a_call_cut_by_shutdown(server.audiosocket_port, call_id, stop))
            await stop.wait()
            assert server.process is not None
            server.process.terminate()  # SIGTERM, as systemd or Kubernetes stop it
            return await call

        kinds = asyncio.run(go())
        assert server.process.wait(60) in (0, -15)  # uvicorn re-raises the SIGTERM it handled, after a clean stop
    assert Kind.AUDIO in kinds and kinds[-1] == Kind.HANGUP, kinds  # the greeting, then a proper hang-up
    events = [e for e in read_call_log(server.call_log) if e.call_id == str(call_id)]
    assert events[0].kind is LifecycleKind.STARTED
    ended = [e for e in events if e.kind is LifecycleKind.ENDED]
    assert ended and ended[0].data["reason"] == "server_shutdown", events[-3:]
    log = (tmp_path / "server.log").read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]
