"""`HandoffService`: the one facade the voice pipeline, the agent desktop and the supervisor page use.

Everything lives in Redis (queues as Streams with a consumer group, agent presence with expiring
heartbeats, offers claimed with SET NX, events over pub/sub `callpilot:events:*`), so several callpilot
processes on one Redis share the floor. The routing decisions are pure (`handoff.acd`); this class
and `handoff.router` only move data between Redis and those decisions."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import redis.asyncio as aredis

from bot.dialogue.handoff import HandoffDecision
from handoff.acd import expected_wait, nobody_signed_in
from handoff.callback_list import CallbackList
from handoff.caller_feed import CallerFeed
from handoff.caller_watch import CallerWatch
from handoff.calls import CallBook
from handoff.config import HandoffConfig
from handoff.contacts import ContactLookup, OrderLookup
from handoff.context import build_context
from handoff.directory import AgentDirectory
from handoff.errors import (
    HandoffError,
    IllegalHandoffTransition,
    NotYourCall,
    OfferTaken,
    RedisUnavailable,
    UnknownAgent,
    UnknownCall,
    UnknownQueue,
)
from handoff.events import (
    AgentConnected,
    AgentLeft,
    AgentUpdate,
    CallEnded,
    CallUpdate,
    Closed,
    ConsultUpdate,
    Offer,
    OfferWithdrawn,
    Overflow,
    QueuePosition,
    ReturnedToBot,
    SignedOut,
    StatusChanged,
    decode_agent_update,
)
from handoff.handle_times import HandleTimes
from handoff.model import (
    Agent,
    AgentStatus,
    AgentView,
    CallbackRequest,
    Contact,
    HandoffContext,
    HandoffState,
    IntentScore,
    LiveCall,
    QueuedCall,
    QueueView,
    SupervisorView,
    TranscriptLine,
)
from handoff.moves import CallMoves
from handoff.presence import Presence
from handoff.queue_settings import LiveQueues
from handoff.redis_conn import TRANSIENT, Keys, as_str, check_reachable, messages, retrying
from handoff.router import Router
from handoff.states import status_event
from handoff.supervisor import floor_view

__all__ = [
    "Agent",
    "AgentConnected",
    "AgentLeft",
    "AgentStatus",
    "AgentUpdate",
    "AgentView",
    "CallEnded",
    "CallUpdate",
    "Closed",
    "Contact",
    "HandoffContext",
    "HandoffError",
    "HandoffService",
    "HandoffState",
    "IllegalHandoffTransition",
    "IntentScore",
    "LiveCall",
    "NotYourCall",
    "Offer",
    "OfferTaken",
    "OfferWithdrawn",
    "Overflow",
    "QueuePosition",
    "QueueView",
    "QueuedCall",
    "RedisUnavailable",
    "ReturnedToBot",
    "StatusChanged",
    "SupervisorView",
    "TranscriptLine",
    "UnknownAgent",
    "UnknownCall",
    "UnknownQueue",
]


WrapUpSink = Callable[[dict[str, Any]], Awaitable[None]]
OUTSIDE = re.compile(r"^(\+?\d{3,20}|sips?:[\w.!~*'()&=+$,;?/%-]+@[\w.-]+(:\d{1,5})?)$")  # a number or a SIP address


class HandoffService:
    """Queues, agents and offers on Redis. `start()` runs the router task; `stop()` ends it."""

    def __init__(self, client: aredis.Redis, *, config: HandoffConfig, directory: AgentDirectory,
                 contacts: ContactLookup, clock: Callable[[], float] = time.time, keys: Keys | None = None,
                 redis_url: str | None = None, consumer: str | None = None,
                 wrap_up_sink: WrapUpSink | None = None, redact: Callable[[str], str] | None = None,
                 orders: OrderLookup | None = None) -> None:
        self.client = client
        self._redact = redact  # applied to a handoff's transcript, summary and slots before Redis has them
        self.config = config
        self.directory = directory
        self.keys = keys or Keys()
        self._contacts = contacts
        self._orders = orders  # the caller's recent orders for the screen pop (None: not shown)
        self._clock = clock
        self._redis_url = redis_url
        self._wrap_up_sink = wrap_up_sink
        self.calls = CallBook(client, self.keys, record_ttl_s=config.record_ttl_s)
        self.presence = Presence(client, self.keys, heartbeat_ttl_s=config.heartbeat_ttl_s, clock=clock,
                                 day_zone=config.timezone)
        self.moves = CallMoves(client, self.keys, self.calls, self.presence, clock=clock, name_of=self._name_of)
        consumer = consumer or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.handle_times = HandleTimes(client, self.keys, alpha=config.handle_time_weight)
        self.callbacks = CallbackList(client, self.keys)
        self.feed = CallerFeed(client, self.keys, self.calls, name_of=self._name_of)
        self.queues = LiveQueues(client, self.keys, config)  # the configured queues + supervisors' changes
        self.router = Router(self.moves, config, directory.agents, clock=clock, consumer=consumer,
                             on_agent_lost=self.agent_disconnected, handle_times=self.handle_times,
                             live=self.queues)
        self.callers = CallerWatch(client, self.keys, self.calls, self.moves, clock=clock,
                                   sink=self._record_outcome)
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None

    async def start(self, *, run_router: bool = True) -> None:
        """Connect (raises RedisUnavailable with the URL), create consumer groups, start the router."""
        await check_reachable(self.client, self._redis_url)
        await self.calls.ensure_groups(self.config.queues)
        if run_router and self._task is None:
            self._stop.clear()
            self._task = asyncio.create_task(self.router.run(self._stop), name="handoff-router")
            self._watch = asyncio.create_task(self.callers.run(self._watched_calls, self._stop), name="caller-watch")

    async def stop(self) -> None:
        """Stop the router task; its queue entries stay in Redis and are given up, so another process's router
        takes them over at once (not after `router_lease_s`)."""
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self._watch is not None:
            await self._watch
            self._watch = None
        owned = list(self.router.owned.values())
        if owned:
            with contextlib.suppress(HandoffError, *TRANSIENT):
                await self.calls.release(self.router.consumer, owned,
                                         idle_ms=int(self.config.router_lease_s * 1000) * 10)
            self.router.owned.clear()

    async def _watched_calls(self) -> list[str]:
        """The calls whose caller side is checked: every live call (any process may notice) and the waiting
        calls this process's router holds."""
        live = [as_str(k) for k in await self.client.hkeys(self.keys.live_calls)]
        return [*live, *self.router.owned]

    async def _record_outcome(self, outcome: dict[str, Any]) -> None:
        await self.client.publish(self.keys.supervisor_channel, json.dumps(outcome))
        if self._wrap_up_sink is not None:
            await self._wrap_up_sink(outcome)

    async def caller_here(self, call_id: str) -> None:
        """The caller side of a handed-over call is still there (the voice pipeline says so every few seconds)."""
        await self.callers.here(call_id)

    def _name_of(self, agent_id: str) -> str:
        try:
            return self.directory.get(agent_id).name
        except UnknownAgent:
            return agent_id

    # The caller's side (voice pipeline).

    async def request(self, call_id: str, decision: HandoffDecision, *, language: str = "en") -> QueuedCall:
        """Build the context (contact looked up by number) and enqueue on the skill's queue."""
        if not call_id:
            raise ValueError("a handoff needs a call id")
        queue = self.config.queue_for(decision.skill)
        now = self._clock()
        context = await build_context(call_id, decision, queue=queue, language=language,
                                      contacts=self._contacts, now=now, orders=self._orders,
                                      **({"redact": self._redact} if self._redact else {}))
        await retrying(lambda: self.calls.enqueue(context, enqueued_at=now), what=f"enqueue call {call_id}")
        rank: Any = await self.client.zrank(self.keys.waiting(queue), call_id)  # by priority, then arrival
        position = int(rank) + 1 if rank is not None else 1
        config = (await self.queues.effective()).queue(queue)
        # Logged in (any status but offline; the router also drops agents whose heartbeat expired): one SMEMBERS.
        online = set(await self.presence.online_ids())
        serving = sum(1 for a in self.directory.agents() if a.level(queue) > 0 and a.agent_id in online)
        expected = expected_wait(position, serving, config, await self.handle_times.get(queue))
        is_open = config.is_open(now)
        if is_open and not serving:
            # Nobody could take it: say nothing about a queue (position 0) and settle it now (the router
            # would too, a moment later), so the caller hears the choices or the bot at once.
            await self.client.hset(self.keys.call(call_id), mapping={"position": 0, "expected_wait_s": ""})
            outcome = nobody_signed_in(call_id, queue, config)
            await self.moves.nobody_signed_in(outcome)
            state = HandoffState.RETURNED_TO_BOT if outcome.overflow is None else HandoffState.OVERFLOWED
            return QueuedCall(call_id, queue, decision.priority, state, 0, None, now, 0.0, decision.caller_number)
        # Kept with the call, so the caller's side hears it even when it subscribes after this returns.
        await self.client.hset(self.keys.call(call_id), mapping={
            "position": position, "expected_wait_s": "" if expected is None else expected})
        return QueuedCall(call_id, queue, decision.priority, HandoffState.WAITING, position, expected, now, 0.0,
                          decision.caller_number)

    def call_events(self, call_id: str) -> AsyncIterator[CallUpdate]:
        """Updates for one call until it leaves the handoff (overflow, closed, back to the bot, ended).
        Starts with where the call stands (position, agent or outcome), so a late subscriber misses
        nothing; a Redis outage is waited out, then the state is re-read."""
        return self.feed.follow(call_id)

    async def caller_hung_up(self, call_id: str) -> None:
        await self.calls.update(call_id, hung_up="1")
        await self.moves.caller_gone(await self.calls.get(call_id))

    async def request_callback(self, call_id: str, number: str | None = None, *,
                               due_at: float | None = None) -> CallbackRequest:
        """The caller chose a callback (at `number`, else the number they call from; at `due_at`, else as soon
        as an agent is free): on the callback list the supervisor page shows and callpilot dials, and to the
        supervisor channel. The call's context and priority go with it, for the agent who takes the callback."""
        record = await self.calls.get(call_id)
        number = (number or record.context.caller_number or "").strip()
        if not number:
            raise ValueError(f"call {call_id!r}: a callback needs a number and the caller's is unknown")
        request = CallbackRequest(call_id, number, record.queue, self._clock(), due_at=due_at,
                                  priority=record.priority, context=record.context.to_dict(),
                                  next_attempt_at=due_at or 0.0)
        await self.callbacks.add(request)
        await self.client.publish(self.keys.supervisor_channel,
                                  json.dumps({"kind": "callback_requested", **request.to_dict()}))
        return request

    async def schedule_callback(self, number: str, queue: str, *, due_at: float | None = None,
                                reason: str = "scheduled") -> CallbackRequest:
        """A callback a supervisor puts on the list (no call of its own): `number` about `queue`."""
        number = number.strip()
        if not number or len(number) > 80 or any(c.isspace() for c in number):
            raise ValueError("a callback needs a number (or a sip: address) without spaces")
        if queue not in self.config.queues:
            raise UnknownQueue(f"no queue {queue!r} (queues: {', '.join(sorted(self.config.queues))})")
        request = CallbackRequest("cb-" + secrets.token_hex(8), number, queue, self._clock(), reason=reason,
                                  due_at=due_at, next_attempt_at=due_at or 0.0)
        await self.callbacks.add(request)
        await self.client.publish(self.keys.supervisor_channel,
                                  json.dumps({"kind": "callback_requested", **request.to_dict()}))
        return request

    # The agent's side (desktop).

    async def authenticate(self, token: str) -> Agent:
        """The agent with this token; UnknownAgent for an unknown or expired token."""
        return self.directory.by_token(token)

    async def set_status(self, agent_id: str, status: AgentStatus) -> None:
        """available / away / offline by the agent; IllegalHandoffTransition for any other move."""
        self.directory.get(agent_id)
        current = (await self.presence.state(agent_id)).status
        await self.presence.transition(agent_id, status_event(current, AgentStatus(status)))

    async def force_away(self, agent_id: str) -> None:
        """A supervisor sets the agent away: a ringing offer is declined first; IllegalHandoffTransition on a call
        (the call is not cut: set them away once it ends)."""
        self.directory.get(agent_id)
        runtime = await self.presence.state(agent_id)
        if runtime.status is AgentStatus.RINGING and runtime.offer_id:
            with contextlib.suppress(OfferTaken):
                await self.moves.decline(agent_id, runtime.offer_id)
            runtime = await self.presence.state(agent_id)
        if runtime.status is AgentStatus.AWAY:
            return
        await self.presence.transition(agent_id, status_event(runtime.status, AgentStatus.AWAY))

    async def sign_out(self, agent_id: str) -> None:
        """A supervisor signs the agent out: their desktop closes, a live call goes back to the queue's front
        (or the bot when nobody else serves it), the agent is offline until they sign in again."""
        self.directory.get(agent_id)
        await self.moves.tell_agent(agent_id, SignedOut(agent_id))
        await self.agent_disconnected(agent_id)

    async def heartbeat(self, agent_id: str) -> None:
        self.directory.get(agent_id)
        await self.presence.heartbeat(agent_id)

    async def accept(self, agent_id: str, offer_id: str) -> HandoffContext:
        """Take the ringing call; OfferTaken if another agent was first or the offer is gone."""
        return await self.moves.accept(agent_id, offer_id)

    async def decline(self, agent_id: str, offer_id: str) -> None:
        await self.moves.decline(agent_id, offer_id)

    async def hold(self, agent_id: str, call_id: str, on: bool) -> None:
        """The agent put the caller on hold (or took them off it): shown on the supervisor page."""
        await self.moves.connected_record(agent_id, call_id)
        await self.calls.update(call_id, on_hold="1" if on else "0")

    async def transfer(self, agent_id: str, call_id: str, *, queue: str | None = None,
                       to_agent: str | None = None, number: str | None = None) -> None:
        """Put the call in another queue (front), offer it to one agent, or send the caller on to an outside
        number or SIP address (a blind transfer: the call leaves callpilot; the transport does it)."""
        if sum(x is not None for x in (queue, to_agent, number)) != 1:
            raise ValueError("transfer needs exactly one of queue=, to_agent= or number=")
        record = await self.moves.connected_record(agent_id, call_id)
        if number is not None:
            number = number.strip()
            if not OUTSIDE.match(number):
                raise ValueError(f"cannot transfer to {number!r}: a number such as +8613812345678 or sip:user@host")
            await self.moves.agent_leaves(record, "transfer_out", requeue_to=None, target=number)
            await self.client.publish(self.keys.supervisor_channel, json.dumps(
                {"kind": "transfer_out", "call_id": call_id, "agent_id": agent_id, "target": number}))
            return
        if queue is not None:
            if queue not in self.config.queues:
                raise UnknownQueue(f"no queue {queue!r} (queues: {', '.join(sorted(self.config.queues))})")
            await self.moves.agent_leaves(record, "transfer", requeue_to=queue)
            return
        assert to_agent is not None
        target = self.directory.get(to_agent)
        await self.moves.transfer_to_agent(record, target.agent_id,
                                           ring_timeout_s=self.config.queue(record.queue).ring_timeout_s)

    # Attended transfers: the agent consults an outside number first (the caller on hold), then completes or
    # cancels. The call to the target is placed by the process with a SIP endpoint (callpilot/consult.py),
    # asked on `keys.consult_channel`; its progress comes back to the agent as ConsultUpdate.

    async def consult(self, agent_id: str, call_id: str, target: str) -> None:
        await self.moves.connected_record(agent_id, call_id)
        target = target.strip()
        if not OUTSIDE.match(target):
            raise ValueError(f"cannot consult {target!r}: a number such as +8613812345678 or sip:user@host")
        await self.calls.update(call_id, consult=target, on_hold="1")
        await self.client.publish(self.keys.consult_channel, json.dumps(
            {"action": "dial", "call_id": call_id, "agent_id": agent_id, "target": target}))

    async def consult_action(self, agent_id: str, call_id: str, action: str) -> str:
        """`complete` (the caller goes to the consulted party) or `hang_up` (the consultation ends, the caller
        stays on hold with the agent); returns the target."""
        record = await self.moves.connected_record(agent_id, call_id)
        if not record.consult:
            raise NotYourCall(f"call {call_id!r} has no consultation going on")
        if action not in ("complete", "hang_up"):
            raise ValueError(f"unknown consultation action {action!r}")
        await self.client.publish(self.keys.consult_channel, json.dumps(
            {"action": action, "call_id": call_id, "agent_id": agent_id, "target": record.consult}))
        if action == "complete":
            await self.moves.complete_transfer(record, record.consult)
            await self.client.publish(self.keys.supervisor_channel, json.dumps(
                {"kind": "transfer_out", "call_id": call_id, "agent_id": agent_id, "target": record.consult,
                 "attended": True}))
        else:
            await self.calls.update(call_id, consult="")
        return record.consult

    async def consult_update(self, agent_id: str, update: ConsultUpdate) -> None:
        """The consultation's progress, for the agent's desktop."""
        if update.state in ("failed", "ended"):
            record = await self.calls.get(update.call_id)
            if record.consult == update.target:
                await self.calls.update(update.call_id, consult="")
        await self.moves.tell_agent(agent_id, update)

    async def external_hung_up(self, call_id: str) -> None:
        """The outside party of a completed attended transfer hung up."""
        await self.moves.external_gone(await self.calls.get(call_id))

    async def hand_back(self, agent_id: str, call_id: str) -> None:
        """The bot takes the call again."""
        await self.moves.agent_leaves(await self.moves.connected_record(agent_id, call_id), "hand_back",
                                      requeue_to=None)

    async def hang_up(self, agent_id: str, call_id: str) -> None:
        await self.moves.agent_leaves(await self.moves.connected_record(agent_id, call_id), "hangup",
                                      requeue_to=None)

    async def wrap_up(self, agent_id: str, call_id: str, disposition: str, notes: str) -> None:
        """Record the outcome; the agent becomes available again."""
        if not disposition.strip():
            raise ValueError("wrap-up needs a disposition (e.g. resolved, follow_up, escalated)")
        record = await self.calls.get(call_id)
        if record.agent_id != agent_id:
            raise NotYourCall(f"agent {agent_id!r} did not take call {call_id!r}")
        current = (await self.presence.state(agent_id)).status
        if current is not AgentStatus.WRAP_UP:
            raise IllegalHandoffTransition("agent", current.value, "wrap_up")
        now = self._clock()
        outcome = {"kind": "wrap_up", "call_id": call_id, "agent_id": agent_id, "queue": record.queue,
                   "disposition": disposition.strip(), "notes": notes, "at": now,
                   "caller_number": record.context.caller_number, "connected_at": record.connected_at}
        await self.calls.update(call_id, disposition=disposition.strip(), notes=notes, wrapped_up_at=now)
        if record.connected_at is not None:  # talk + wrap-up: what the next callers' expected waits are made of
            outcome["handle_s"] = round(now - record.connected_at, 3)
            await self.handle_times.record(record.queue, now - record.connected_at)
        await self.client.publish(self.keys.supervisor_channel, json.dumps(outcome))
        if self._wrap_up_sink is not None:
            await self._wrap_up_sink(outcome)
        await self.presence.transition(agent_id, "ready")

    async def agent_disconnected(self, agent_id: str) -> None:
        """The browser went away: the live call goes back to the queue (front) or to the bot."""
        runtime = await self.presence.state(agent_id)
        if runtime.status is AgentStatus.ON_CALL and runtime.call_id:
            record = await self.calls.get(runtime.call_id)
            others = [s for s, _ in await self.presence.snapshot(self.directory.agents())
                      if s.agent_id != agent_id and s.online and s.status is not AgentStatus.OFFLINE
                      and s.skills.get(record.queue, 0) > 0]
            await self.moves.agent_leaves(record, "disconnected", requeue_to=record.queue if others else None,
                                          disconnect=True)
            return
        if runtime.status is AgentStatus.RINGING and runtime.offer_id:
            with contextlib.suppress(OfferTaken):
                await self.moves.decline(agent_id, runtime.offer_id)
            runtime = await self.presence.state(agent_id)
        if runtime.status is not AgentStatus.OFFLINE:
            await self.presence.transition(agent_id, "disconnect")

    async def agent_events(self, agent_id: str) -> AsyncIterator[AgentUpdate]:
        """Offers, withdrawals, ended calls and status changes for one agent, as they happen
        (through a Redis outage too: the listener resubscribes)."""
        self.directory.get(agent_id)
        subscription = messages(self.client, self.keys.agent_channel(agent_id))
        try:
            async for text in subscription:
                if text is not None:
                    yield decode_agent_update(text)
        finally:
            await subscription.aclose()

    # The supervisor's side.

    async def snapshot(self) -> SupervisorView:
        """Queues (waiting calls in order, waits), agents (states), live calls: the supervisor's page."""
        return await floor_view(self.client, self.keys, self.calls, self.presence, self.directory.agents(),
                                await self.queues.effective(), self._clock(),
                                handle_s=await self.handle_times.all(),
                                callbacks=await self.callbacks.all())
