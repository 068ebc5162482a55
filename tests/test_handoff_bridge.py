"""The agent <-> caller audio bridge over Redis pub/sub: in-process fakeredis and the real Redis on localhost."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import fakeredis
import numpy as np
import pytest
import redis.asyncio as aioredis

from handoff.bridge import FRAME_BYTES, AudioBridge, BadAudio, CallerKey, HoldSignal

REAL_REDIS = "redis://127.0.0.1:6379/0"


def tone_frames(count: int) -> list[bytes]:
    """Distinct 20 ms frames of a 440 Hz tone at 16 kHz (each frame starts at a different phase)."""
    t = np.arange(count * FRAME_BYTES // 2) / 16000
    pcm = (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype("<i2").tobytes()
    return [pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES)]


async def take(stream: AsyncIterator[bytes | HoldSignal | CallerKey], count: int) -> list[bytes | HoldSignal | CallerKey]:
    items: list[bytes | HoldSignal | CallerKey] = []
    async for item in stream:
        items.append(item)
        if len(items) == count:
            break
    return items


async def fake_client() -> aioredis.Redis:
    return fakeredis.aioredis.FakeRedis(server=fakeredis.FakeServer())


async def real_client() -> aioredis.Redis:
    client = aioredis.Redis.from_url(REAL_REDIS)
    try:
        await client.ping()
    except OSError as exc:  # pragma: no cover - the machine has Redis; say so clearly if not
        pytest.fail(f"Redis at {REAL_REDIS} is not reachable: {exc}")
    return client


@pytest.fixture(params=["fakeredis", "redis"])
def make_client(request: pytest.FixtureRequest) -> object:
    return fake_client if request.param == "fakeredis" else real_client


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_caller_frames_reach_the_agent_in_order(make_client: object) -> None:
    async def go() -> list[bytes | HoldSignal]:
        client = await make_client()  # type: ignore[operator]
        bridge = AudioBridge(client, prefix=f"test:{uuid.uuid4().hex}")
        frames = tone_frames(25)
        async with bridge.listen("call-1", "agent") as heard:
            for frame in frames:
                await bridge.to_agent("call-1", frame)
            got = await asyncio.wait_for(take(heard, len(frames)), 10)
        await client.aclose()
        assert got == frames
        return got

    run(go())


def test_the_caller_hears_the_agent_and_the_hold_switch_in_order(make_client: object) -> None:
    async def go() -> None:
        client = await make_client()  # type: ignore[operator]
        bridge = AudioBridge(client, prefix=f"test:{uuid.uuid4().hex}")
        frames = tone_frames(3)
        async with bridge.listen("call-2", "caller") as heard:
            await bridge.to_caller("call-2", frames[0])
            await bridge.set_hold("call-2", True)
            await bridge.set_hold("call-2", False)
            await bridge.to_caller("call-2", frames[1])
            got = await asyncio.wait_for(take(heard, 4), 10)
        await client.aclose()
        assert got == [frames[0], HoldSignal(True), HoldSignal(False), frames[1]]

    run(go())


def test_the_agent_hears_the_callers_keys_between_the_frames(make_client: object) -> None:
    async def go() -> None:
        client = await make_client()  # type: ignore[operator]
        bridge = AudioBridge(client, prefix=f"test:{uuid.uuid4().hex}")
        frames = tone_frames(2)
        async with bridge.listen("call-k", "agent") as heard:
            await bridge.to_agent("call-k", frames[0])
            await bridge.caller_key("call-k", "5")
            await bridge.to_agent("call-k", frames[1])
            got = await asyncio.wait_for(take(heard, 3), 10)
        with pytest.raises(ValueError, match="not a phone key"):
            await bridge.caller_key("call-k", "55")
        await client.aclose()
        assert got == [frames[0], CallerKey("5"), frames[1]]

    run(go())


def test_calls_do_not_hear_each_other(make_client: object) -> None:
    async def go() -> None:
        client = await make_client()  # type: ignore[operator]
        bridge = AudioBridge(client, prefix=f"test:{uuid.uuid4().hex}")
        mine, other = tone_frames(2)
        async with bridge.listen("mine", "agent") as heard:
            await bridge.to_agent("other", other)
            await bridge.to_caller("mine", other)  # the other direction of my own call
            await bridge.to_agent("mine", mine)
            got = await asyncio.wait_for(take(heard, 1), 10)
        await client.aclose()
        assert got == [mine]

    run(go())


def test_bad_audio_is_refused_with_a_clear_error() -> None:
    async def go() -> None:
        bridge = AudioBridge(await fake_client())
        with pytest.raises(BadAudio, match="even number of bytes"):
            await bridge.to_agent("c", b"\x00\x01\x02")
        with pytest.raises(BadAudio, match="empty"):
            await bridge.to_caller("c", b"")
        with pytest.raises(BadAudio, match="exceeds"):
            await bridge.to_caller("c", bytes(FRAME_BYTES * 11))

    run(go())


def test_a_decoding_client_is_named_as_the_problem() -> None:
    async def go() -> None:
        server = fakeredis.FakeServer()
        bridge = AudioBridge(fakeredis.aioredis.FakeRedis(server=server, decode_responses=True))
        async with bridge.listen("c", "agent") as heard:
            await bridge.to_agent("c", b"ab")
            with pytest.raises(BadAudio, match="decoding responses"):
                await asyncio.wait_for(take(heard, 1), 10)

    run(go())
