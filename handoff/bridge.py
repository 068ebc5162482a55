"""Agent <-> caller audio over Redis pub/sub, so the agent's browser may be connected to another process than the call.

Per call there are four channels: `callpilot:audio:{call_id}:to_agent` and `:to_caller` carry raw PCM16
mono at 16 kHz, one 20 ms frame (640 bytes) per message; `:control` carries the agent's hold switch as
JSON (`{"hold": true}`), `:keys` the keys the caller presses while talking to the agent (`{"digit": "5"}`).
Pub/sub drops what nobody listens to, which is what live audio wants: a frame
nobody hears now is worth nothing later.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

from fakeredis import aioredis as fake_aioredis
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from handoff.redis_conn import process_fake_server

AUDIO_PREFIX = "callpilot:audio"
BRIDGE_RATE = 16000
FRAME_BYTES = BRIDGE_RATE // 50 * 2  # 20 ms of PCM16
MAX_MESSAGE_BYTES = FRAME_BYTES * 10  # a browser may batch up to 200 ms; more is a bug or abuse

Side = Literal["caller", "agent", "consult_agent", "consult_target"]
Channel = Literal["to_agent", "to_caller", "control", "keys", "consult_up", "consult_down"]


@dataclass(frozen=True)
class HoldSignal:
    """The agent put the caller on hold (`on`) or took them off it."""

    on: bool


@dataclass(frozen=True)
class CallerKey:
    """The caller pressed a key (0-9, *, #, A-D) while connected to the agent."""

    digit: str


DIGITS = frozenset("0123456789*#ABCD")


class BadAudio(ValueError):
    """Audio that cannot be PCM16 frames: odd length, empty or too large."""


def check_pcm(pcm: bytes) -> None:
    if not pcm:
        raise BadAudio("empty audio message")
    if len(pcm) % 2:
        raise BadAudio(f"PCM16 audio needs an even number of bytes, got {len(pcm)}")
    if len(pcm) > MAX_MESSAGE_BYTES:
        raise BadAudio(f"audio message of {len(pcm)} bytes exceeds {MAX_MESSAGE_BYTES} (200 ms at 16 kHz)")


def bridge_client(url: str | None) -> Redis:
    """A client for audio: the same server as the handoff's (the process's fakeredis when `url` is None), but
    returning bytes, since frames are raw PCM."""
    if url is None:
        client: Redis = fake_aioredis.FakeRedis(server=process_fake_server())
        return client
    return Redis.from_url(url, socket_connect_timeout=2.0)


class AudioBridge:
    """Publishes and subscribes one call's audio; needs a Redis client that returns bytes (no decoding)."""

    def __init__(self, redis: Redis, *, prefix: str = AUDIO_PREFIX) -> None:
        self.redis = redis
        self.prefix = prefix

    def channel(self, call_id: str, name: Channel) -> str:
        return f"{self.prefix}:{call_id}:{name}"

    async def to_agent(self, call_id: str, pcm16: bytes) -> None:
        """Caller audio for the agent (PCM16 at 16 kHz)."""
        check_pcm(pcm16)
        await self.redis.publish(self.channel(call_id, "to_agent"), pcm16)

    async def to_caller(self, call_id: str, pcm16: bytes) -> None:
        """The agent's voice for the caller (PCM16 at 16 kHz)."""
        check_pcm(pcm16)
        await self.redis.publish(self.channel(call_id, "to_caller"), pcm16)

    async def to_consulted(self, call_id: str, pcm16: bytes) -> None:
        """The agent's voice for the party an attended transfer consults (the caller is on hold)."""
        check_pcm(pcm16)
        await self.redis.publish(self.channel(call_id, "consult_up"), pcm16)

    async def from_consulted(self, call_id: str, pcm16: bytes) -> None:
        """The consulted party's voice for the agent."""
        check_pcm(pcm16)
        await self.redis.publish(self.channel(call_id, "consult_down"), pcm16)

    async def set_hold(self, call_id: str, on: bool) -> None:
        await self.redis.publish(self.channel(call_id, "control"), json.dumps({"hold": on}))

    async def caller_key(self, call_id: str, digit: str) -> None:
        """A key the caller pressed, for the agent's desktop."""
        if digit not in DIGITS:
            raise ValueError(f"not a phone key: {digit!r}")
        await self.redis.publish(self.channel(call_id, "keys"), json.dumps({"digit": digit}))

    def listen(self, call_id: str, side: Side) -> BridgeListener:
        """What one side hears: `async with bridge.listen(id, "caller") as heard: async for item in heard`.

        The subscription is in place when the `async with` body starts, so nothing published after that is lost.
        """
        channels: tuple[str, ...]
        if side == "caller":
            channels = (self.channel(call_id, "to_caller"), self.channel(call_id, "control"))
        elif side == "consult_agent":
            channels = (self.channel(call_id, "consult_down"),)
        elif side == "consult_target":
            channels = (self.channel(call_id, "consult_up"),)
        else:
            channels = (self.channel(call_id, "to_agent"), self.channel(call_id, "keys"))
        return BridgeListener(self.redis.pubsub(), channels)


class BridgeListener:
    """A subscription to one side's channels; iterating yields PCM frames (bytes) and HoldSignals."""

    def __init__(self, pubsub: PubSub, channels: tuple[str, ...]) -> None:
        self._pubsub = pubsub
        self._channels = channels
        self._control = next((c for c in channels if c.endswith(":control")), None)
        self._keys = next((c for c in channels if c.endswith(":keys")), None)

    async def __aenter__(self) -> BridgeListener:
        await self._pubsub.subscribe(*self._channels)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        with contextlib.suppress(Exception):  # the connection may already be gone; nothing to release then
            await asyncio.shield(self._close())

    async def _close(self) -> None:
        await self._pubsub.unsubscribe()
        await self._pubsub.aclose()  # type: ignore[no-untyped-call]

    def __aiter__(self) -> AsyncIterator[bytes | HoldSignal | CallerKey]:
        return self._items()

    async def _items(self) -> AsyncIterator[bytes | HoldSignal | CallerKey]:
        while True:
            message: dict[str, Any] | None = await self._pubsub.get_message(
                ignore_subscribe_messages=True, timeout=1.0
            )
            if message is None or message.get("type") != "message":
                continue
            channel, data = message["channel"], message["data"]
            channel = channel.decode() if isinstance(channel, bytes) else str(channel)
            if channel == self._control:
                yield HoldSignal(bool(json.loads(data).get("hold")))
            elif channel == self._keys:
                yield CallerKey(str(json.loads(data).get("digit")))
            elif isinstance(data, bytes):
                yield data
            else:
                raise BadAudio(f"{channel}: got text, expected raw PCM16 (is the Redis client decoding responses?)")
