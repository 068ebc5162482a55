"""Connecting to Redis: a real server when CALLPILOT_REDIS_URL is set, else one in-process fakeredis.

Every key the handoff writes is named here (`Keys`), under one prefix, so tests and several
deployments can share a server without seeing each other."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

import fakeredis
import redis
import redis.asyncio as aredis
from fakeredis import aioredis as fake_aioredis

from bot.urls import mask_url, mask_urls_in
from handoff.errors import RedisUnavailable

log = logging.getLogger("callpilot.handoff")
T = TypeVar("T")
TRANSIENT = (redis.ConnectionError, redis.TimeoutError, ConnectionError, OSError)
EMBEDDED = "embedded (in-process fakeredis)"


@cache
def process_fake_server() -> fakeredis.FakeServer:
    """The one in-process Redis all handoff clients of this process share."""
    return fakeredis.FakeServer()


def async_client(url: str | None) -> aredis.Redis:
    if url is None:
        client: aredis.Redis = fake_aioredis.FakeRedis(server=process_fake_server(), decode_responses=True)
        return client
    return aredis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=2.0, socket_timeout=5.0)


def sync_client(url: str | None, *, timeout_s: float = 5.0) -> redis.Redis:
    """A blocking client; `timeout_s` bounds each command (and the connect, at most 2 s) - keep it short where
    the caller runs on the event loop."""
    if url is None:
        client: redis.Redis = fakeredis.FakeRedis(server=process_fake_server(), decode_responses=True)
        return client
    return redis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=min(2.0, timeout_s),
                                socket_timeout=timeout_s)


class RedisLink:
    """A client of its own for a part that needs Redis before (or without) the handoff service, e.g. the leader
    election: made when first asked for (inside the running event loop), closed by `stop()`."""

    def __init__(self, url: str | None) -> None:
        self.url = url
        self._client: aredis.Redis | None = None

    def client(self) -> aredis.Redis:
        if self._client is None:
            self._client = async_client(self.url)
        return self._client

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


async def check_reachable(client: aredis.Redis, url: str | None) -> None:
    """Raise RedisUnavailable naming the URL (its password masked) when the server does not answer a PING."""
    try:
        await client.ping()
    except TRANSIENT as exc:
        where = mask_url(url) if url else EMBEDDED
        raise RedisUnavailable(f"cannot reach Redis at {where}: {mask_urls_in(str(exc))}") from None


async def retrying(operation: Callable[[], Awaitable[T]], *, what: str, give_up_after_s: float = 10.0,
                   first_delay_s: float = 0.05, max_delay_s: float = 1.0) -> T:
    """Run a Redis operation, retrying with exponential backoff while the server is unreachable."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + give_up_after_s
    delay = first_delay_s
    while True:
        try:
            return await operation()
        except TRANSIENT as exc:
            if loop.time() + delay > deadline:
                raise RedisUnavailable(f"Redis unreachable while trying to {what}: {exc}") from None
            log.warning("Redis unreachable (%s): retrying %s in %.2fs", exc, what, delay)
            await asyncio.sleep(delay)
            delay = min(max_delay_s, delay * 2)


async def messages(client: aredis.Redis, channel: str, *, idle_s: float = 1.0) -> AsyncGenerator[str | None]:
    """A channel's messages; None once subscribed and after each `idle_s` without one. An outage is waited out
    (resubscribing with backoff), so a listener never dies of it. Messages sent meanwhile are lost:
    the caller re-reads the state it cares about on the next None."""
    delay = 0.05
    while True:
        try:
            async with client.pubsub() as pubsub:
                await pubsub.subscribe(channel)
                delay = 0.05
                yield None  # subscribed: from here on nothing published is missed
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=idle_s)
                    yield None if message is None else as_str(message["data"])
        except TRANSIENT as exc:
            log.warning("Redis unreachable (%s): resubscribing to %s in %.2fs", exc, channel, delay)
            await asyncio.sleep(delay)
            delay = min(2.0, delay * 2)


@dataclass(frozen=True)
class Keys:
    """Key and channel names under one prefix (default `callpilot:`)."""

    prefix: str = "callpilot:"

    @property
    def consult_channel(self) -> str:
        """Attended transfers: the desk asks the process that places calls to dial, complete or hang up."""
        return f"{self.prefix}handoff:consult"

    def consult_lock(self, call_id: str) -> str:
        return f"{self.prefix}handoff:consult:{call_id}"

    @property
    def divert(self) -> str:
        """"1" while a supervisor sends new calls to the backup number."""
        return f"{self.prefix}divert"

    def stream(self, queue: str) -> str:
        return f"{self.prefix}handoff:queue:{queue}:stream"

    def waiting(self, queue: str) -> str:
        return f"{self.prefix}handoff:queue:{queue}:waiting"

    def call(self, call_id: str) -> str:
        return f"{self.prefix}handoff:call:{call_id}"

    def caller_alive(self, call_id: str) -> str:
        """Exists while the call's caller side beats (handoff.caller_watch)."""
        return f"{self.call(call_id)}:caller"

    def caller_tracked(self, call_id: str) -> str:
        """Exists once the call's caller side has beaten: a missing `caller_alive` then means it is gone."""
        return f"{self.call(call_id)}:caller:tracked"

    def offer_claim(self, offer_id: str) -> str:
        return f"{self.prefix}handoff:offer:{offer_id}:taken"

    @property
    def agent_directory(self) -> str:
        """Hash: agent id -> the agent's record (handoff.agent_store)."""
        return f"{self.prefix}handoff:directory"

    @property
    def agent_directory_version(self) -> str:
        """Bumped by every change to the agent directory."""
        return f"{self.prefix}handoff:directory:version"

    def agent(self, agent_id: str) -> str:
        return f"{self.prefix}handoff:agent:{agent_id}"

    def agent_free(self, agent_id: str) -> str:
        """Exists exactly while the agent is available; the router takes it with GETDEL."""
        return f"{self.prefix}handoff:agent:{agent_id}:free"

    def agent_day(self, agent_id: str, day: str) -> str:
        """Hash: the agent's calls and busy / away / signed-in seconds on `day` (handoff.shift)."""
        return f"{self.prefix}handoff:agent:{agent_id}:day:{day}"

    def agent_alive(self, agent_id: str) -> str:
        return f"{self.prefix}handoff:agent:{agent_id}:alive"

    @property
    def agents_online(self) -> str:
        return f"{self.prefix}handoff:agents:online"

    @property
    def live_calls(self) -> str:
        return f"{self.prefix}handoff:live"

    @property
    def handle_times(self) -> str:
        """Hash: queue -> moving average of talk + wrap-up seconds."""
        return f"{self.prefix}handoff:handle_s"

    @property
    def callbacks(self) -> str:
        """Hash: call id -> JSON of a callback the caller asked for."""
        return f"{self.prefix}handoff:callbacks"

    @property
    def queue_changes(self) -> str:
        """Hash: queue -> JSON of the settings a supervisor changed (handoff.queue_settings)."""
        return f"{self.prefix}handoff:queue_changes"

    def session(self, sender_id: str) -> str:
        return f"{self.prefix}session:{sender_id}"

    def call_channel(self, call_id: str) -> str:
        return f"{self.prefix}events:call:{call_id}"

    def agent_channel(self, agent_id: str) -> str:
        return f"{self.prefix}events:agent:{agent_id}"

    @property
    def supervisor_channel(self) -> str:
        return f"{self.prefix}events:supervisor"


GROUP = "acd"


def as_str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
