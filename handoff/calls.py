"""Queue entries in Redis: a hash per call, a stream per queue (consumer group `acd`), a waiting index.

The stream is the durable part: an entry stays pending in the group until its call leaves the
queue, so a router that dies holding entries loses nothing - another router takes them over with
XAUTOCLAIM once they have been idle longer than the lease."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import redis
import redis.asyncio as aredis

from handoff.acd import WaitingCall
from handoff.errors import UnknownCall
from handoff.model import FINAL_CALL_STATES, HandoffContext, HandoffState
from handoff.redis_conn import GROUP, Keys, as_str


@dataclass(frozen=True)
class HandoffCall:
    """One call's handoff record, as stored in its hash."""

    call_id: str
    queue: str
    priority: int
    state: HandoffState
    enqueued_at: float
    context_json: str  # parsed only when needed (`context`): the router reloads records every pass
    front: bool = False
    offer_id: str | None = None
    offered_to: tuple[str, ...] = ()
    offer_expires_at: float = 0.0
    offer_seq: int = 0
    tried: tuple[str, ...] = ()
    position_sent_at: float | None = None
    position: int = 0
    agent_id: str | None = None
    connected_at: float | None = None
    stream_id: str | None = None
    hung_up: bool = False
    gen: int = 1  # bumped by each requeue; a stream entry of an older generation is stale
    consult: str | None = None  # an attended transfer's target while the agent consults it
    external: str | None = None  # the caller was handed to this outside party (attended transfer completed)

    @cached_property
    def context(self) -> HandoffContext:
        return HandoffContext.from_dict(json.loads(self.context_json))

    @property
    def final(self) -> bool:
        return self.state in FINAL_CALL_STATES

    def waiting_call(self) -> WaitingCall:
        return WaitingCall(self.call_id, self.priority, self.enqueued_at, self.state, self.front, self.offer_id,
                           self.offered_to, self.offer_expires_at, self.tried, self.position_sent_at,
                           self.offer_seq)


def _ids(text: str | None) -> tuple[str, ...]:
    return tuple(t for t in (text or "").split(",") if t)


def parse_record(data: Mapping[Any, Any]) -> HandoffCall:
    def opt_float(key: str) -> float | None:
        value = data.get(key)
        return float(value) if value not in (None, "") else None

    return HandoffCall(
        call_id=data["call_id"], queue=data["queue"], priority=int(data["priority"]),
        state=HandoffState(data["state"]), enqueued_at=float(data["enqueued_at"]),
        context_json=data["context"], front=data.get("front") == "1",
        offer_id=data.get("offer_id") or None, offered_to=_ids(data.get("offered_to")),
        offer_expires_at=float(data.get("offer_expires_at") or 0), offer_seq=int(data.get("offer_seq") or 0),
        tried=_ids(data.get("tried")), position_sent_at=opt_float("position_sent_at"),
        position=int(data.get("position") or 0), agent_id=data.get("agent_id") or None,
        connected_at=opt_float("connected_at"), stream_id=data.get("stream_id") or None,
        hung_up=data.get("hung_up") == "1", gen=int(data.get("gen") or 1),
        consult=data.get("consult") or None, external=data.get("external") or None,
    )


_LIGHT_FIELDS = ("call_id", "queue", "priority", "state", "enqueued_at", "front", "offer_id", "offered_to",
                 "offer_expires_at", "offer_seq", "tried", "position_sent_at", "position", "agent_id",
                 "connected_at", "stream_id", "hung_up", "gen")


_VOLATILE_FIELDS = ("state", "gen", "hung_up", "offer_id", "offered_to", "offer_expires_at", "offer_seq", "tried")


def queue_score(priority: int, front: bool, enqueued_at: float) -> float:
    """The waiting index's order (put-back calls, then priority, then arrival) as one sortable number."""
    return (0 if front else priority) * 1e10 + enqueued_at


def join(ids: Iterable[str]) -> str:
    return ",".join(ids)


@dataclass(frozen=True)
class Entry:
    """A stream entry a router holds: which call, in which queue."""

    queue: str
    stream_id: str
    call_id: str
    gen: int = 1
    # What the entry says about a call new to the queues (generation 1: never offered): no read needed.
    waiting: bool = False
    priority: int = 0
    enqueued_at: float = 0.0
    front: bool = False

    def record(self) -> HandoffCall:
        """The call as a fresh entry describes it (light: no context)."""
        return HandoffCall(self.call_id, self.queue, self.priority, HandoffState.WAITING, self.enqueued_at, "",
                          front=self.front, stream_id=self.stream_id, gen=self.gen)


class CallBook:
    """Reads and writes call records and queue streams."""

    def __init__(self, client: aredis.Redis, keys: Keys, *, record_ttl_s: int) -> None:
        self._r = client
        self._keys = keys
        self._ttl = record_ttl_s

    @property
    def client(self) -> aredis.Redis:
        return self._r

    @property
    def keys(self) -> Keys:
        return self._keys

    async def ensure_groups(self, queues: Iterable[str]) -> None:
        for queue in queues:
            try:
                await self._r.xgroup_create(self._keys.stream(queue), GROUP, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def enqueue(self, context: HandoffContext, *, enqueued_at: float) -> str:
        """Write a new record and add the call to its queue's stream, in one transaction."""
        fields: dict[Any, Any] = {
            "call_id": context.call_id, "queue": context.queue, "priority": context.priority,
            "state": HandoffState.WAITING.value, "enqueued_at": enqueued_at, "front": "0",
            "context": json.dumps(context.to_dict(), separators=(",", ":")), "offer_id": "",
            "offered_to": "", "agent_id": "", "position_sent_at": "", "hung_up": "0", "gen": 1}
        return await self._add(context, fields, enqueued_at, gen=1, fresh=True)

    async def requeue(self, record: HandoffCall, queue: str, *, front: bool = True,
                      offer: dict[str, Any] | None = None) -> str:
        """Put a call (back) into a queue: same record, same wait so far, ahead of the others
        (or, with `offer`, already ringing at one agent: a transfer to that agent)."""
        context = replace(record.context, queue=queue)
        gen = record.gen + 1
        fields: dict[Any, Any] = {
            "queue": queue, "state": HandoffState.WAITING.value, "front": "1" if front else "0",
            "context": json.dumps(context.to_dict(), separators=(",", ":")), "offer_id": "",
            "offered_to": "", "agent_id": "", "position_sent_at": "", "tried": "", "gen": gen, **(offer or {})}
        return await self._add(context, fields, record.enqueued_at, gen=gen, fresh=False)

    async def _add(self, context: HandoffContext, fields: dict[Any, Any], enqueued_at: float, *, gen: int,
                   fresh: bool) -> str:
        key = self._keys.call(context.call_id)
        async with self._r.pipeline(transaction=True) as pipe:
            if fresh:
                pipe.delete(key)
            pipe.hset(key, mapping=fields)
            pipe.persist(key)
            pipe.zadd(self._keys.waiting(context.queue),
                      {context.call_id: queue_score(context.priority, fields.get("front") == "1", enqueued_at)})
            pipe.xadd(self._keys.stream(context.queue), {
                "call_id": context.call_id, "gen": gen, "state": fields.get("state", ""),
                "priority": context.priority, "enqueued_at": enqueued_at, "front": fields.get("front", "0")})
            result = await pipe.execute()
        stream_id = as_str(result[-1])
        await self._r.hset(key, "stream_id", stream_id)
        return stream_id

    async def get(self, call_id: str) -> HandoffCall:
        data = await self._r.hgetall(self._keys.call(call_id))
        if not data:
            raise UnknownCall(f"no handoff for call {call_id!r}")
        return parse_record(data)

    async def many(self, call_ids: Sequence[str], *, light: bool = False) -> dict[str, HandoffCall]:
        """Records by call id; `light` leaves out the context (the router's every-pass reload)."""
        async with self._r.pipeline(transaction=False) as pipe:
            for call_id in call_ids:
                if light:
                    pipe.hmget(self._keys.call(call_id), _LIGHT_FIELDS)
                else:
                    pipe.hgetall(self._keys.call(call_id))
            raw = await pipe.execute()
        if light:
            raw = [dict(zip(_LIGHT_FIELDS, values, strict=True)) if values[0] else {} for values in raw]
            for data in raw:
                if data:
                    data["context"] = ""
        return {call_id: parse_record(data) for call_id, data in zip(call_ids, raw, strict=True) if data}

    async def refresh(self, known: dict[str, HandoffCall]) -> dict[str, HandoffCall]:
        """Known records with what others may have changed re-read (8 fields, not the whole hash);
        calls gone or requeued since are left out."""
        ids = list(known)
        async with self._r.pipeline(transaction=False) as pipe:
            for call_id in ids:
                pipe.hmget(self._keys.call(call_id), _VOLATILE_FIELDS)
            raw = await pipe.execute()
        out: dict[str, HandoffCall] = {}
        for call_id, values in zip(ids, raw, strict=True):
            state, gen, hung_up, offer_id, offered_to, expires, seq, tried = values
            if state is None or int(gen or 1) != known[call_id].gen:
                continue  # gone, or requeued since (queue, place may differ): the caller reads it afresh
            out[call_id] = replace(known[call_id], state=HandoffState(state), gen=int(gen or 1), hung_up=hung_up == "1",
                                   offer_id=offer_id or None, offered_to=_ids(offered_to),
                                   offer_expires_at=float(expires or 0), offer_seq=int(seq or 0), tried=_ids(tried))
        return out

    async def update(self, call_id: str, **fields: Any) -> None:
        mapping: dict[Any, Any] = dict(fields)
        await self._r.hset(self._keys.call(call_id), mapping=mapping)

    async def claim_offer(self, offer_id: str, by: str) -> bool:
        """The one atomic arbiter of an offer: accept, decline, timeout, hang-up and overflow race here."""
        return bool(await self._r.set(self._keys.offer_claim(offer_id), by, nx=True, ex=self._ttl))

    async def unclaim_offer(self, offer_id: str, by: str) -> None:
        """Give back a claim `by` made and could not carry out (only its own: a claim is never taken from another)."""
        async with self._r.pipeline(transaction=True) as pipe:
            key = self._keys.offer_claim(offer_id)
            await pipe.watch(key)
            value = await pipe.get(key)
            if value is not None and as_str(value) == by:
                pipe.multi()  # type: ignore[no-untyped-call]
                pipe.delete(key)
                with contextlib.suppress(redis.WatchError):
                    await pipe.execute()

    async def offer_owner(self, offer_id: str) -> str | None:
        value = await self._r.get(self._keys.offer_claim(offer_id))
        return None if value is None else as_str(value)

    async def drop_entry(self, entry: Entry) -> None:
        """Acknowledge a stale entry (its call was requeued under a newer one, or is gone)."""
        async with self._r.pipeline(transaction=False) as pipe:
            pipe.xack(self._keys.stream(entry.queue), GROUP, entry.stream_id)
            pipe.xdel(self._keys.stream(entry.queue), entry.stream_id)
            await pipe.execute()

    def finish(self, pipe: aredis.client.Pipeline, record: HandoffCall, state: HandoffState) -> None:
        """Queue the writes that take a call out of its queue for good (or into an agent's hands)."""
        pipe.hset(self._keys.call(record.call_id), "state", state.value)
        pipe.zrem(self._keys.waiting(record.queue), record.call_id)
        if record.stream_id:
            pipe.xack(self._keys.stream(record.queue), GROUP, record.stream_id)
            pipe.xdel(self._keys.stream(record.queue), record.stream_id)
        if state in FINAL_CALL_STATES:
            pipe.hdel(self._keys.live_calls, record.call_id)
            pipe.expire(self._keys.call(record.call_id), self._ttl)

    async def read_new(self, consumer: str, queues: Sequence[str], *, count: int, block_ms: int | None
                       ) -> list[Entry]:
        streams: dict[Any, Any] = {self._keys.stream(q): ">" for q in queues}
        replies = await self._r.xreadgroup(GROUP, consumer, streams, count=count, block=block_ms)
        return self._entries(queues, replies or [])

    async def keep_alive(self, consumer: str, entries: Sequence[Entry]) -> None:
        """Reset the idle time of the entries this router holds, so nobody else claims them."""
        by_queue: dict[str, list[Any]] = {}
        for entry in entries:
            by_queue.setdefault(entry.queue, []).append(entry.stream_id)
        async with self._r.pipeline(transaction=False) as pipe:
            for queue, ids in by_queue.items():
                pipe.xclaim(self._keys.stream(queue), GROUP, consumer, 0, ids, justid=True)
            await pipe.execute()

    async def release(self, consumer: str, entries: Sequence[Entry], *, idle_ms: int) -> None:
        """A router that stops gives its entries up: they look idle for `idle_ms` (XCLAIM ... IDLE), so the next
        router's XAUTOCLAIM takes them at once instead of after the lease."""
        by_queue: dict[str, list[Any]] = {}
        for entry in entries:
            by_queue.setdefault(entry.queue, []).append(entry.stream_id)
        async with self._r.pipeline(transaction=False) as pipe:
            for queue, ids in by_queue.items():
                pipe.xclaim(self._keys.stream(queue), GROUP, consumer, 0, ids, idle=idle_ms, justid=True)
            await pipe.execute()

    async def take_over(self, consumer: str, queues: Sequence[str], *, lease_ms: int) -> list[Entry]:
        """Entries of routers silent for longer than the lease (crashed): now this router's."""
        found: list[Entry] = []
        for queue in queues:
            reply = await self._r.xautoclaim(self._keys.stream(queue), GROUP, consumer, lease_ms, "0-0",
                                             count=1000)
            for stream_id, fields in reply[1]:
                if fields:
                    found.append(Entry(queue, as_str(stream_id), as_str(fields.get("call_id")),
                                       int(fields.get("gen") or 1)))
        return found

    def _entries(self, queues: Sequence[str], replies: Any) -> list[Entry]:
        queue_of = {self._keys.stream(q): q for q in queues}
        out = []
        for stream, messages in replies:
            for stream_id, fields in messages:
                if fields:
                    out.append(Entry(queue_of[as_str(stream)], as_str(stream_id), as_str(fields["call_id"]),
                                     int(fields.get("gen") or 1),
                                     fields.get("state") == HandoffState.WAITING.value and fields.get("gen") == "1",
                                     int(fields.get("priority") or 0), float(fields.get("enqueued_at") or 0),
                                     fields.get("front") == "1"))
        return out
