"""Agent <-> caller audio over Redis pub/sub, so the agent's browser may be connected to another process than the call.

Per call there are these channels: `callpilot:audio:{call_id}:to_agent` and `:to_caller` carry raw PCM16
mono at 16 kHz, one 20 ms frame (640 bytes) per message; `:control` carries the agent's hold switch as
JSON (`{"hold": true}`), `:keys` the keys the caller presses while talking to the agent (`{"digit": "5"}`);
`:whisper` a supervisor's voice for the agent only and `:barge` for the caller too, each mixed into what that
side hears (`FrameMixer`), so a supervisor who whispers is never heard by the caller.
Pub/sub drops what nobody listens to, which is what live audio wants: a frame
nobody hears now is worth nothing later.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

import numpy as np
from fakeredis import aioredis as fake_aioredis
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from handoff.redis_conn import process_fake_server

AUDIO_PREFIX = "callpilot:audio"
BRIDGE_RATE = 16000
FRAME_BYTES = BRIDGE_RATE // 50 * 2  # 20 ms of PCM16
MAX_MESSAGE_BYTES = FRAME_BYTES * 10  # a browser may batch up to 200 ms; more is a bug or abuse

Side = Literal["caller", "agent", "consult_agent", "consult_target", "supervisor"]
Channel = Literal["to_agent", "to_caller", "control", "keys", "consult_up", "consult_down", "whisper", "barge",
                  "transcript"]


@dataclass(frozen=True)
class HoldSignal:
    """The agent put the caller on hold (`on`) or took them off it."""

    on: bool


@dataclass(frozen=True)
class CallerKey:
    """The caller pressed a key (0-9, *, #, A-D) while connected to the agent."""

    digit: str


@dataclass(frozen=True)
class SaidLine:
    """A line the caller or the agent said, transcribed on the call's side, for the agent's desktop."""

    speaker: str
    text: str


DIGITS = frozenset("0123456789*#ABCD")
MAX_LINE_CHARS = 2000


class BadAudio(ValueError):
    """Audio that cannot be PCM16 frames: odd length, empty or too large."""


def check_pcm(pcm: bytes) -> None:
    if not pcm:
        raise BadAudio("empty audio message")
    if len(pcm) % 2:
        raise BadAudio(f"PCM16 audio needs an even number of bytes, got {len(pcm)}")
    if len(pcm) > MAX_MESSAGE_BYTES:
        raise BadAudio(f"audio message of {len(pcm)} bytes exceeds {MAX_MESSAGE_BYTES} (200 ms at 16 kHz)")


class FrameMixer:
    """Mixes a second voice (a supervisor's) into a stream of PCM16 frames, sans I/O.

    `main(frame)` returns the frame with as much of the second voice added as it is long; `extra(frame)` queues
    the second voice and returns what must be played alone when the main stream has stopped (the agent on mute,
    the caller's side not sending): once more than `backlog` frames wait, the oldest goes out by itself.
    Samples are added and clipped to 16 bits; at most `limit` frames wait (older ones are dropped).
    """

    def __init__(self, *, backlog: int = 2, limit: int = 25) -> None:
        self.backlog, self.limit = backlog, limit
        self._waiting: deque[bytes] = deque()

    def main(self, frame: bytes) -> bytes:
        if not self._waiting:
            return frame
        extra = self._take(len(frame))
        mixed = np.frombuffer(frame, dtype="<i2").astype(np.int32)
        mixed[: len(extra) // 2] += np.frombuffer(extra, dtype="<i2")
        return np.clip(mixed, -32768, 32767).astype("<i2").tobytes()

    def extra(self, frame: bytes) -> bytes | None:
        self._waiting.append(frame)
        while len(self._waiting) > self.limit:
            self._waiting.popleft()
        return self._waiting.popleft() if len(self._waiting) > self.backlog else None

    def _take(self, size: int) -> bytes:
        """Up to `size` bytes of the waiting voice (a longer frame's rest stays queued)."""
        taken = bytearray()
        while self._waiting and len(taken) < size:
            frame = self._waiting.popleft()
            room = size - len(taken)
            taken += frame[:room]
            if len(frame) > room:
                self._waiting.appendleft(frame[room:])
        return bytes(taken)


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

    async def whisper(self, call_id: str, pcm16: bytes, *, barge: bool = False) -> None:
        """A supervisor's voice: to the agent only, or (`barge`) to the caller as well."""
        check_pcm(pcm16)
        await self.redis.publish(self.channel(call_id, "whisper"), pcm16)
        if barge:
            await self.redis.publish(self.channel(call_id, "barge"), pcm16)

    async def mix_to_caller(self, call_id: str, pcm16: bytes) -> None:
        """Sound mixed into what the caller hears from the agent (the keys an agent presses)."""
        check_pcm(pcm16)
        await self.redis.publish(self.channel(call_id, "barge"), pcm16)

    async def set_hold(self, call_id: str, on: bool) -> None:
        await self.redis.publish(self.channel(call_id, "control"), json.dumps({"hold": on}))

    async def caller_key(self, call_id: str, digit: str) -> None:
        """A key the caller pressed, for the agent's desktop."""
        if digit not in DIGITS:
            raise ValueError(f"not a phone key: {digit!r}")
        await self.redis.publish(self.channel(call_id, "keys"), json.dumps({"digit": digit}))

    async def said(self, call_id: str, speaker: str, text: str) -> None:
        """A transcribed line of the agent leg (`caller` or `agent`), for the desktop's live transcript."""
        if speaker not in ("caller", "agent"):
            raise ValueError(f"speaker must be caller or agent, got {speaker!r}")
        await self.redis.publish(self.channel(call_id, "transcript"),
                                 json.dumps({"speaker": speaker, "text": text[:MAX_LINE_CHARS]}))

    def listen(self, call_id: str, side: Side) -> BridgeListener:
        """What one side hears: `async with bridge.listen(id, "caller") as heard: async for item in heard`.

        The subscription is in place when the `async with` body starts, so nothing published after that is lost.
        """
        channels: tuple[str, ...]
        mixed: str | None = None  # a second voice mixed into the first channel's frames
        if side == "caller":
            channels = (self.channel(call_id, "to_caller"), self.channel(call_id, "control"))
            mixed = self.channel(call_id, "barge")
        elif side == "consult_agent":
            channels = (self.channel(call_id, "consult_down"),)
        elif side == "consult_target":
            channels = (self.channel(call_id, "consult_up"),)
        elif side == "supervisor":  # listening in: the caller, with the agent's voice mixed in
            channels = (self.channel(call_id, "to_agent"),)
            mixed = self.channel(call_id, "to_caller")
        else:
            channels = (self.channel(call_id, "to_agent"), self.channel(call_id, "keys"),
                        self.channel(call_id, "transcript"))
            mixed = self.channel(call_id, "whisper")
        return BridgeListener(self.redis.pubsub(), channels, mixed)


class BridgeListener:
    """A subscription to one side's channels; iterating yields PCM frames (bytes) and HoldSignals."""

    def __init__(self, pubsub: PubSub, channels: tuple[str, ...], mixed: str | None = None) -> None:
        self._pubsub = pubsub
        self._channels = channels + ((mixed,) if mixed else ())
        self._mixed = mixed
        self._mixer = FrameMixer()
        self._control = next((c for c in channels if c.endswith(":control")), None)
        self._keys = next((c for c in channels if c.endswith(":keys")), None)
        self._said = next((c for c in channels if c.endswith(":transcript")), None)

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

    def __aiter__(self) -> AsyncIterator[bytes | HoldSignal | CallerKey | SaidLine]:
        return self._items()

    async def _items(self) -> AsyncIterator[bytes | HoldSignal | CallerKey | SaidLine]:
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
            elif channel == self._said:
                line = json.loads(data)
                yield SaidLine(str(line.get("speaker")), str(line.get("text")))
            elif isinstance(data, bytes) and channel == self._mixed:
                alone = self._mixer.extra(data)
                if alone is not None:
                    yield alone
            elif isinstance(data, bytes):
                yield self._mixer.main(data)
            else:
                raise BadAudio(f"{channel}: got text, expected raw PCM16 (is the Redis client decoding responses?)")
