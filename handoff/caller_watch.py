"""Callers whose process died: a handed-over call's caller side (the voice pipeline, in whichever `callpilot run`
has the line) says it is still there every few seconds (`CallerWatch.here`, a key that expires). A call whose
caller side has stopped saying so - the process was killed, its machine lost power - is ended as `caller_lost`
by whichever process notices first: the agent's desk sees the call end, a waiting entry leaves the queue instead
of being offered to agents for a caller nobody can hear, and the records close the call. Calls whose caller side
never said it was there (older pipelines, tests that drive the service directly) are left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import redis.asyncio as aredis

from handoff.calls import CallBook
from handoff.moves import CallMoves
from handoff.redis_conn import Keys

log = logging.getLogger("callpilot.handoff")

CALLER_TTL_S = 10.0  # three missed beats (the pipeline beats every 3 s)
CHECK_S = 2.0
LOCK_S = 60
TRACKED_S = 86400  # how long a call counts as one whose caller side beats

Sink = Callable[[dict[str, Any]], Awaitable[None]]


class CallerWatch:
    def __init__(self, client: aredis.Redis, keys: Keys, calls: CallBook, moves: CallMoves, *,
                 clock: Callable[[], float] = time.time, ttl_s: float = CALLER_TTL_S,
                 sink: Sink | None = None) -> None:
        self._r, self._keys, self._calls, self._moves = client, keys, calls, moves
        self._clock, self.ttl_s, self._sink = clock, ttl_s, sink
        self.lost = 0

    def _alive(self, call_id: str) -> str:
        return self._keys.caller_alive(call_id)

    async def here(self, call_id: str) -> None:
        """The caller side of `call_id` is still there (for the next `ttl_s`). The pipeline says so once before
        it asks for an agent, so a call queued by a process that dies at once is known as one that beats (the
        marker is a key of its own: queueing writes the call's hash afresh)."""
        async with self._r.pipeline(transaction=False) as pipe:
            pipe.set(self._alive(call_id), "1", px=int(self.ttl_s * 1000))
            pipe.set(self._keys.caller_tracked(call_id), "1", ex=TRACKED_S)
            await pipe.execute()

    async def check(self, call_ids: Iterable[str]) -> list[str]:
        """End the calls among `call_ids` whose caller side stopped beating; returns their ids."""
        ids = list(dict.fromkeys(call_ids))
        if not ids:
            return []
        async with self._r.pipeline(transaction=False) as pipe:
            for call_id in ids:
                pipe.exists(self._keys.caller_tracked(call_id))
                pipe.exists(self._alive(call_id))
            answers = await pipe.execute()
        lost = []
        for index, call_id in enumerate(ids):
            tracked, alive = answers[2 * index], answers[2 * index + 1]
            if not tracked or alive:
                continue
            # One process ends it (several may notice at once).
            if not await self._r.set(f"{self._alive(call_id)}:lost", "1", nx=True, ex=LOCK_S):
                continue
            records = await self._calls.many([call_id])
            record = records.get(call_id)
            if record is None or record.final:
                continue
            log.warning("call %s: the caller's side stopped answering (its process died?); ending it", call_id)
            await self._calls.update(call_id, hung_up="1")
            await self._moves.caller_gone(record, reason="caller_lost")
            self.lost += 1
            lost.append(call_id)
            if self._sink is not None:
                await self._sink({"kind": "caller_lost", "call_id": call_id, "agent_id": record.agent_id,
                                  "queue": record.queue, "at": self._clock()})
        return lost

    async def run(self, candidates: Callable[[], Awaitable[list[str]]], stop: asyncio.Event) -> None:
        """Check `candidates()` (live calls and this router's waiting ones) every `CHECK_S` until `stop`."""
        while not stop.is_set():
            try:
                await self.check(await candidates())
            except Exception:  # Redis away for a moment: check again next round
                log.debug("caller check failed", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), CHECK_S)
