"""Which of several `callpilot run` processes on one Redis does the floor's once-only work: the recording purge,
closing calls a crashed process left open, and alert evaluation (two processes evaluating would send every
alert twice). The leader holds a Redis key (SET NX PX) and renews it every third of its lifetime; when it stops
it gives the key up at once, when it dies another process takes over within `ttl_s`. A process whose Redis is
unreachable is never the leader (the work waits rather than running twice); with no Redis configured, the
process's in-memory Redis makes the one process the leader.

Alert states live beside the key (`AlertStates`), so a new leader continues the old one's hysteresis instead of
firing every alert again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
from collections.abc import Callable
from typing import Any

import redis.asyncio as aredis
from redis.exceptions import WatchError

log = logging.getLogger("callpilot.leader")

KEY = "callpilot:leader"
ALERT_STATES = "callpilot:alerts:states"

ClientOf = Callable[[], aredis.Redis | None]


class Leader:
    """`run()` keeps trying to lead; `is_leader` says whether this process leads now."""

    def __init__(self, client: ClientOf, *, key: str = KEY, ttl_s: float = 15.0, me: str | None = None) -> None:
        self._client, self.key, self.ttl_s = client, key, ttl_s
        self.me = me or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.is_leader = False
        self._task: asyncio.Task[None] | None = None

    def __call__(self) -> bool:
        return self.is_leader

    async def step(self) -> bool:
        """One round: take the key if it is free, or renew it if it is ours; False when Redis cannot be asked."""
        client = self._client()
        was = self.is_leader
        try:
            if client is None:
                raise ConnectionError("no Redis yet")
            ttl_ms = int(self.ttl_s * 1000)
            if self.is_leader:
                self.is_leader = await self._if_ours(client, lambda pipe: pipe.pexpire(self.key, ttl_ms))
            if not self.is_leader:
                self.is_leader = bool(await client.set(self.key, self.me, nx=True, px=ttl_ms))
        except Exception as exc:  # Redis down: not the leader (someone else may be, once it is back)
            if was:
                log.warning("leadership lost: Redis cannot be asked (%s)", type(exc).__name__)
            self.is_leader = False
        if self.is_leader != was:
            log.info("this process %s the leader (%s)", "is now" if self.is_leader else "is no longer", self.me)
        return self.is_leader

    async def run(self) -> None:
        while True:
            await self.step()
            await asyncio.sleep(self.ttl_s / 3)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="leader")

    async def stop(self) -> None:
        """Stop, and hand the work to another process at once (not after `ttl_s`)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        client = self._client()
        if self.is_leader and client is not None:
            with contextlib.suppress(Exception):
                await self._if_ours(client, lambda pipe: pipe.delete(self.key))
        self.is_leader = False

    async def _if_ours(self, client: aredis.Redis, change: Callable[[Any], object]) -> bool:
        """Renew or give up the key only while it is still ours: WATCH, check, MULTI/EXEC (no Lua, so the embedded
        in-process Redis can do it too); False when it is someone else's or changed meanwhile."""
        async with client.pipeline(transaction=True) as pipe:
            await pipe.watch(self.key)
            if await pipe.get(self.key) != self.me:
                await pipe.unwatch()  # type: ignore[no-untyped-call]
                return False
            pipe.multi()  # type: ignore[no-untyped-call]
            change(pipe)
            try:
                await pipe.execute()
            except WatchError:
                return False
            return True


class AlertStates:
    """The alert rules' states (ok, pending, firing ...) shared through Redis by whichever process leads."""

    def __init__(self, client: ClientOf, *, key: str = ALERT_STATES) -> None:
        self._client, self.key = client, key

    async def load(self) -> dict[str, str]:
        client = self._client()
        if client is None:
            return {}
        raw = await client.get(self.key)
        loaded = json.loads(raw) if raw else {}
        return {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}

    async def save(self, states: dict[str, str]) -> None:
        client = self._client()
        if client is not None:
            await client.set(self.key, json.dumps(states))
