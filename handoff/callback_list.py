"""The callback list: callers who asked to be called back instead of waiting longer, until someone marks them done.

A Redis hash every process and the supervisor page read; one process dials a callback at a time (a lock)."""

from __future__ import annotations

import json

import redis
import redis.asyncio as aredis

from handoff.model import CallbackRequest
from handoff.redis_conn import Keys


class CallbackList:
    """Callbacks callers asked for (instead of waiting longer), until someone marks them done."""

    def __init__(self, client: aredis.Redis, keys: Keys) -> None:
        self._r = client
        self._key = keys.callbacks

    async def add(self, request: CallbackRequest) -> None:
        await self._r.hset(self._key, request.call_id, json.dumps(request.to_dict()))

    async def all(self) -> tuple[CallbackRequest, ...]:
        """Oldest first."""
        data = await self._r.hgetall(self._key)
        requests = (CallbackRequest.from_dict(json.loads(text)) for text in data.values())
        return tuple(sorted(requests, key=lambda r: (r.requested_at, r.call_id)))

    async def get(self, call_id: str) -> CallbackRequest | None:
        text = await self._r.hget(self._key, call_id)
        return None if text is None else CallbackRequest.from_dict(json.loads(text))

    async def update(self, request: CallbackRequest) -> bool:
        """Store a callback's new state; False if it is no longer on the list (a supervisor took it off).
        Optimistic (WATCH): a removal between the check and the write wins."""
        async with self._r.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(self._key)
                    if not await pipe.hexists(self._key, request.call_id):
                        return False
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.hset(self._key, request.call_id, json.dumps(request.to_dict()))
                    await pipe.execute()
                    return True
                except redis.WatchError:
                    continue

    async def claim(self, call_id: str, owner: str, ttl_s: float) -> bool:
        """One process dials a callback at a time: SET NX on its lock for `ttl_s`."""
        return bool(await self._r.set(f"{self._key}:lock:{call_id}", owner, nx=True, px=int(ttl_s * 1000)))

    async def release(self, call_id: str) -> None:
        await self._r.delete(f"{self._key}:lock:{call_id}")

    async def done(self, call_id: str) -> bool:
        """Take a callback off the list (it was made); False if it was not there."""
        return bool(await self._r.hdel(self._key, call_id))
