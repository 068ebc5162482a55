"""What the caller's side hears about a handed-over call: where it stands now, then every update.

Pub/sub forgets what nobody listened to, so a listener that subscribes late (the voice pipeline
subscribes just after `request()`) or comes back after a Redis outage first hears the call's current
state, read from its hash: the position and expected wait, the agent it is connected to, or the
outcome that ended it (overflow, closed, back to the bot), which `CallMoves.tell_call` stores there."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import redis.asyncio as aredis

from handoff.calls import CallBook, HandoffCall
from handoff.errors import UnknownCall
from handoff.events import (
    AgentConnected,
    AgentLeft,
    CallUpdate,
    Closed,
    Overflow,
    QueuePosition,
    ReturnedToBot,
    decode_call_update,
)
from handoff.model import HandoffState
from handoff.redis_conn import TRANSIENT, Keys, messages

TERMINAL = (Overflow, Closed, ReturnedToBot)
LOST_AFTER_S = 3.0  # a call whose record stays missing this long was lost (Redis came back empty): back to the bot


def ends_the_handoff(update: CallUpdate) -> bool:
    """After this update the call is no longer the handoff's (the bot, the overflow or nobody has it)."""
    return isinstance(update, TERMINAL) or (isinstance(update, AgentLeft) and not update.requeued
                                            and update.reason in ("hangup", "hand_back"))


class CallerFeed:
    """`follow(call_id)`: the current state, then the updates, until the call leaves the handoff."""

    def __init__(self, client: aredis.Redis, keys: Keys, calls: CallBook, *, name_of: Callable[[str], str]) -> None:
        self._r = client
        self._keys = keys
        self._calls = calls
        self._name_of = name_of
        self.lost_after_s = LOST_AFTER_S

    async def current(self, record: HandoffCall) -> CallUpdate | None:
        """The update that describes where the call stands (None: nothing to say yet)."""
        if record.state is HandoffState.CONNECTED and record.agent_id:
            return AgentConnected(record.call_id, record.agent_id, self._name_of(record.agent_id))
        if record.state in (HandoffState.WAITING, HandoffState.OFFERED):
            stored, expected = await self._r.hmget(self._keys.call(record.call_id), ("position", "expected_wait_s"))
            if stored is not None and int(stored) <= 0:
                return None  # told nothing yet (nobody was signed in): the router decides what happens
            position = int(stored or 0)
            if position <= 0:
                rank: Any = await self._r.zrank(self._keys.waiting(record.queue), record.call_id)
                position = 0 if rank is None else int(rank) + 1
            wait = float(expected) if expected not in (None, "", b"") else None
            return QueuePosition(record.call_id, position, wait) if position else None
        if record.final:
            outcome = await self._r.hget(self._keys.call(record.call_id), "outcome")
            return decode_call_update(outcome) if outcome else None
        return None

    async def follow(self, call_id: str) -> AsyncIterator[CallUpdate]:
        """Subscribe first, then read the state: nothing published in between is missed."""
        subscription = messages(self._r, self._keys.call_channel(call_id))
        try:
            await anext(subscription)  # subscribed
            told: CallUpdate | None = None
            with contextlib.suppress(UnknownCall):
                record = await self._calls.get(call_id)
                told = await self.current(record)
                if told is not None:
                    yield told
                    if ends_the_handoff(told):
                        return
            missing_since: float | None = None
            final_since: float | None = None  # read as ended, but without the update that says how (yet)
            async for text in subscription:
                if text is None:  # quiet, or back after an outage: where does the call stand?
                    try:
                        record = await self._calls.get(call_id)
                    except UnknownCall:
                        missing_since = missing_since or time.monotonic()
                        if time.monotonic() - missing_since >= self.lost_after_s:  # never on hold for ever
                            yield ReturnedToBot(call_id, "the queue lost this call (Redis came back empty)")
                            return
                        continue
                    except TRANSIENT:
                        continue
                    missing_since = None
                    now = await self.current(record)
                    if now is not None and now != told and not isinstance(now, QueuePosition):
                        told = now
                        yield now
                        if ends_the_handoff(now):
                            return
                    if record.final and now is not None and ends_the_handoff(now):
                        return
                    if record.final and now is None:
                        # The state is written before the update that says how it ended (an agent's hang-up:
                        # the call ends, then AgentLeft is stored and published): wait for it, a while.
                        final_since = final_since or time.monotonic()
                        if time.monotonic() - final_since >= self.lost_after_s:
                            return
                    continue
                update = decode_call_update(text)
                if update == told and not isinstance(update, QueuePosition):  # (positions repeat on purpose)
                    continue  # published before the state was read, and told from that state already
                told = update
                yield update
                if ends_the_handoff(update):
                    return
        finally:
            await subscription.aclose()
