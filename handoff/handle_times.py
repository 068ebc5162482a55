"""Measured handle times per queue (talk + wrap-up), for the expected wait a caller is told.

A moving average per queue in a Redis hash, so every process sees and feeds the same."""

from __future__ import annotations

import redis
import redis.asyncio as aredis

from handoff.redis_conn import Keys, as_str


class HandleTimes:
    """An exponentially weighted moving average of talk + wrap-up time per queue: recent calls count most."""

    def __init__(self, client: aredis.Redis, keys: Keys, *, alpha: float) -> None:
        if not 0 < alpha <= 1:
            raise ValueError(f"the moving average's weight must be in (0, 1], got {alpha}")
        self._r = client
        self._key = keys.handle_times
        self.alpha = alpha

    async def get(self, queue: str) -> float | None:
        value = await self._r.hget(self._key, queue)
        return None if value is None else float(value)

    async def all(self) -> dict[str, float]:
        data = await self._r.hgetall(self._key)
        return {as_str(queue): float(value) for queue, value in data.items()}

    async def record(self, queue: str, seconds: float) -> float:
        """Fold one call's handle time in (the first call sets it); returns the new average.
        Optimistic (WATCH): two processes recording at once both count."""
        if seconds < 0:
            raise ValueError(f"a handle time cannot be negative ({seconds} s)")
        async with self._r.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(self._key)
                    old = await pipe.hget(self._key, queue)
                    new = seconds if old is None else self.alpha * seconds + (1 - self.alpha) * float(old)
                    new = round(new, 3)
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.hset(self._key, queue, new)
                    await pipe.execute()
                    return new
                except redis.WatchError:
                    continue
