"""10,000 idle websocket connections against a real `callpilot run` (5,000 media streams that never send their
start, 5,000 agent desks that never say hello), twice: the server closes every one after its timeout, its
memory comes back to a plateau (the second flood costs little more than the first: nothing leaks), /health
answers throughout, and a real call placed in the middle of the flood gets its line and its greeting."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from pathlib import Path

import httpx
import psutil
from websockets.asyncio.client import ClientConnection, connect

from tests.live_processes import servers
from voice_gateway.twilio_security import media_token

IDLE = 5_000  # per endpoint, per round
START_TIMEOUT_S = 20


async def open_idle(url: str, count: int) -> list[ClientConnection]:
    opening = asyncio.Semaphore(100)  # handshakes in flight at once (a listen backlog holds 2,048)

    async def one() -> ClientConnection:
        async with opening:
            return await connect(url, open_timeout=120, ping_interval=None, close_timeout=1)

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def greeted(url: str, sid: str) -> bool:
    """A Twilio call (start, then 20 ms of silence at a time) that hears the bot's first audio."""
    start = {"event": "start", "sequenceNumber": "1", "streamSid": "MZ" + "2" * 32,
             "start": {"streamSid": "MZ" + "2" * 32, "callSid": sid,
                       "customParameters": {"caller": "+16175550142", "token": media_token("flood", sid)}}}
    silence = base64.b64encode(b"\xff" * 160).decode()
    async with connect(url, open_timeout=60) as call:
        await call.send(json.dumps(start))
        for n in range(1500):
            await call.send(json.dumps({"event": "media", "sequenceNumber": str(n + 2), "streamSid": "MZ" + "2" * 32,
                                        "media": {"track": "inbound", "payload": silence}}))
            try:
                if '"media"' in str(await asyncio.wait_for(call.recv(), 0.02)):
                    return True
            except TimeoutError:
                pass
    return False


def test_ten_thousand_idle_websockets_are_closed_after_their_timeout_and_memory_stays_bounded(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CALLPILOT_AUDIOSOCKET_PORT": "0",
           "CALLPILOT_STATE_DIR": str(tmp_path / "var"), "CALLPILOT_CALL_LOG": str(tmp_path / "calls.jsonl"),
           "CALLPILOT_CALL_START_TIMEOUT_S": str(START_TIMEOUT_S), "CALLPILOT_TWILIO_AUTH_TOKEN": "flood",
           "CALLPILOT_MAX_CALLS": "5"}
    env.pop("CALLPILOT_REDIS_URL", None)
    env.pop("CALLPILOT_DATABASE_URL", None)
    with servers(tmp_path, {"server": env}) as started:
        server = started["server"]
        process = psutil.Process(server.process.pid)

        async def flood(round_no: int) -> tuple[float, bool, list[int | None]]:
            idle = await open_idle(f"{server.ws}/media/twilio", IDLE)
            idle += await open_idle(f"{server.ws}/agent/ws", IDLE)
            opened_at = time.monotonic()
            peak = process.memory_info().rss
            assert httpx.get(f"{server.http}/health", timeout=10).status_code == 200
            call_got_in = await greeted(f"{server.ws}/media/twilio", "CA" + f"{round_no:02d}" * 16)
            while any(ws.close_code is None for ws in idle) and time.monotonic() - opened_at < START_TIMEOUT_S + 60:
                await asyncio.sleep(1)
            codes = [ws.close_code for ws in idle]
            for ws in idle:
                await ws.close()
            return peak, call_got_in, codes

        before = process.memory_info().rss
        first_peak, first_call, first_codes = asyncio.run(flood(1))
        after_first = process.memory_info().rss
        second_peak, second_call, second_codes = asyncio.run(flood(2))
        after_second = process.memory_info().rss
        assert httpx.get(f"{server.http}/health", timeout=10).status_code == 200

    for codes in (first_codes, second_codes):
        assert None not in codes, f"{codes.count(None)} idle connections were never closed by the server"
        assert set(codes[IDLE:]) == {4401}  # desks without a hello: unauthorised
    assert first_call and second_call, "a real call did not get its line during the flood"
    per_connection_kb = (first_peak - before) / (2 * IDLE) / 1024
    print(f"idle websockets: {before >> 20} MB before, {first_peak >> 20} MB with 10,000 open, {after_first >> 20} MB after, "
          f"{second_peak >> 20} MB with 10,000 again, {after_second >> 20} MB after: {per_connection_kb:.0f} KB each")
    assert per_connection_kb < 150, f"{per_connection_kb:.0f} KB of memory per idle connection"
    # nothing leaks: the second flood reuses what the first freed (allocators keep freed memory for reuse)
    growth = second_peak - first_peak
    assert growth < 0.35 * (first_peak - before), (before, first_peak, after_first, second_peak, after_second)
