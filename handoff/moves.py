"""The contact-centre floor: the multi-step moves of calls and agents, shared by router and service.

Every contested move of an offer (accept, decline, ring timeout, hang-up, overflow) first claims the
offer with SET NX (`CallBook.claim_offer`): exactly one of them wins, the others see OfferTaken or
do nothing."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio as aredis

from handoff.acd import NobodySignedIn, Ring
from handoff.caller_feed import ends_the_handoff
from handoff.calls import CallBook, HandoffCall, join
from handoff.errors import HandoffError, NotYourCall, OfferTaken, UnknownCall
from handoff.events import (
    AgentConnected,
    AgentLeft,
    AgentUpdate,
    CallEnded,
    CallUpdate,
    Closed,
    LeftReason,
    Offer,
    OfferWithdrawn,
    Overflow,
    ReturnedToBot,
    encode,
)
from handoff.model import HandoffContext, HandoffState
from handoff.presence import Presence
from handoff.redis_conn import Keys, as_str
from handoff.states import call_next


def call_id_of(offer_id: str) -> str:
    """Offer ids are `<call id>:<n>`."""
    call_id, sep, _ = offer_id.rpartition(":")
    if not sep or not call_id:
        raise OfferTaken(f"not an offer id: {offer_id!r}")
    return call_id


class CallMoves:
    """Moves calls and agents together, publishing what the pages and the caller's side must know."""

    def __init__(self, client: aredis.Redis, keys: Keys, calls: CallBook, presence: Presence, *,
                 clock: Callable[[], float], name_of: Callable[[str], str]) -> None:
        self._r = client
        self._keys = keys
        self.calls = calls
        self.presence = presence
        self._clock = clock
        self._name_of = name_of

    async def tell_call(self, call_id: str, update: CallUpdate) -> None:
        """Publish to the caller's side and the supervisor; an update that ends the handoff is also kept in
        the call's hash (`outcome`), so a listener that subscribes late still hears it."""
        text = encode(update)
        async with self._r.pipeline(transaction=False) as pipe:
            if ends_the_handoff(update):
                pipe.hset(self._keys.call(call_id), "outcome", text)
            pipe.publish(self._keys.call_channel(call_id), text)
            pipe.publish(self._keys.supervisor_channel, text)
            await pipe.execute()

    async def tell_agent(self, agent_id: str, update: AgentUpdate) -> None:
        await self._r.publish(self._keys.agent_channel(agent_id), encode(update))

    # Ringing.

    async def ring(self, rings: Sequence[Ring]) -> list[Ring]:
        """Ring the chosen agents: one round trip reads the calls afresh and reserves the agents
        (GETDEL of their `free` keys), one writes the offers; a call that stopped waiting meanwhile
        (hung up, taken over) gives its agents back."""
        wanted = [agent_id for ring in rings for agent_id in ring.agent_ids]
        async with self._r.pipeline(transaction=False) as pipe:
            for ring in rings:
                pipe.hmget(self._keys.call(ring.call_id), ("state", "hung_up", "context"))
            for ring in rings:  # a caller side that beat and stopped (its process died) is rung for nobody
                pipe.exists(self._keys.caller_tracked(ring.call_id))
                pipe.exists(self._keys.caller_alive(ring.call_id))
            for agent_id in wanted:
                pipe.getdel(self._keys.agent_free(agent_id))
            replies = await pipe.execute()
        fresh = dict(zip((r.call_id for r in rings), replies, strict=False))
        beats = replies[len(rings):3 * len(rings)]
        lost = {ring.call_id for i, ring in enumerate(rings) if beats[2 * i] and not beats[2 * i + 1]}
        got = {agent_id for agent_id, value in zip(wanted, replies[3 * len(rings):], strict=True) if value is not None}
        rung: list[Ring] = []
        now = self._clock()
        async with self._r.pipeline(transaction=False) as pipe:
            for ring in rings:
                agents = tuple(a for a in ring.agent_ids if a in got)
                got.difference_update(agents)  # a reserved agent rings for one call only, the first that asked
                state, hung_up, context_json = fresh[ring.call_id]
                if state != HandoffState.WAITING.value or hung_up == "1" or not context_json or ring.call_id in lost:
                    for agent_id in agents:
                        pipe.set(self._keys.agent_free(agent_id), "1")  # not needed after all
                    continue
                if not agents:
                    continue
                call_next(HandoffState(state), "offer")
                text = _offer_json(ring, context_json, now)
                for agent_id in agents:
                    self.presence.mark_ringing(pipe, agent_id, ring.offer_id, now)
                    pipe.publish(self._keys.agent_channel(agent_id), text)
                pipe.hset(self._keys.call(ring.call_id), mapping={
                    "state": HandoffState.OFFERED.value, "offer_id": ring.offer_id, "offered_to": join(agents),
                    "offer_expires_at": ring.expires_at, "offer_seq": int(ring.offer_id.rpartition(":")[2])})
                rung.append(Ring(ring.call_id, ring.offer_id, agents, ring.expires_at))
            await pipe.execute()
        return rung

    async def _release(self, agent_ids: Sequence[str], offer_id: str, call_id: str, *, event: str,
                       reason: str) -> None:
        for agent_id in agent_ids:
            if await self.presence.transition(agent_id, event, expect_offer=offer_id) is not None:
                await self.tell_agent(agent_id, OfferWithdrawn(offer_id, call_id, reason))

    async def ring_timeout(self, record: HandoffCall, offer_id: str, agent_ids: Sequence[str]) -> bool:
        """Nobody answered: the agents are free again, the call waits for the next ones."""
        if not await self.calls.claim_offer(offer_id, "timeout"):
            return False
        await self._release(agent_ids, offer_id, record.call_id, event="ring_timeout", reason="timeout")
        state = call_next(HandoffState.OFFERED, "ring_timeout")
        await self.calls.update(record.call_id, state=state.value, offer_id="", offered_to="",
                                tried=join(dict.fromkeys(record.tried + tuple(agent_ids))))
        return True

    # The agent answers.

    async def _ringing_record(self, agent_id: str, offer_id: str) -> HandoffCall:
        try:
            record = await self.calls.get(call_id_of(offer_id))
        except UnknownCall:
            raise OfferTaken(f"offer {offer_id} no longer exists") from None
        if record.state is not HandoffState.OFFERED or record.offer_id != offer_id or agent_id not in record.offered_to:
            owner = await self.calls.offer_owner(offer_id)
            raise OfferTaken(_taken_message(offer_id, owner))
        return record

    async def accept(self, agent_id: str, offer_id: str) -> HandoffContext:
        record = await self._ringing_record(agent_id, offer_id)
        if not await self.calls.claim_offer(offer_id, agent_id):
            raise OfferTaken(_taken_message(offer_id, await self.calls.offer_owner(offer_id)))
        call_next(record.state, "accept")
        if await self.presence.transition(agent_id, "accept", expect_offer=offer_id, call_id=record.call_id) is None:
            # The agent's desk is not ringing for this offer (it rings for another call, or is on one): no call
            # of two at once. The claim is given back; the ring timeout (or a hang-up) settles the offer.
            await self.calls.unclaim_offer(offer_id, agent_id)
            raise OfferTaken(f"offer {offer_id} is not ringing at {agent_id}'s desk")
        now = self._clock()
        async with self._r.pipeline(transaction=False) as pipe:
            self.calls.finish(pipe, record, HandoffState.CONNECTED)
            pipe.hset(self._keys.call(record.call_id), mapping={"agent_id": agent_id, "connected_at": now})
            pipe.hset(self._keys.live_calls, record.call_id, agent_id)
            pipe.hget(self._keys.call(record.call_id), "hung_up")
            hung_up = as_str((await pipe.execute())[-1]) == "1"
        others = [a for a in record.offered_to if a != agent_id]
        if hung_up:
            # The caller hung up after this accept claimed the offer: their hang-up (hung_up written, then the call
            # read) saw the offer taken but the call not yet connected and left it to us, so the agent's call ends here.
            await self._release(others, offer_id, record.call_id, event="withdraw", reason="taken")
            await self.caller_gone(await self.calls.get(record.call_id))
            return record.context.waited(now)
        await self.tell_call(record.call_id, AgentConnected(record.call_id, agent_id, self._name_of(agent_id)))
        await self._release(others, offer_id, record.call_id, event="withdraw", reason="taken")
        return record.context.waited(now)

    async def decline(self, agent_id: str, offer_id: str) -> None:
        record = await self._ringing_record(agent_id, offer_id)
        remaining = tuple(a for a in record.offered_to if a != agent_id)
        if not remaining and not await self.calls.claim_offer(offer_id, f"declined by {agent_id}"):
            raise OfferTaken(_taken_message(offer_id, await self.calls.offer_owner(offer_id)))
        fields: dict[str, Any] = {"offered_to": join(remaining),
                                  "tried": join(dict.fromkeys((*record.tried, agent_id)))}
        if not remaining:
            fields.update(state=call_next(record.state, "decline").value, offer_id="")
        await self.calls.update(record.call_id, **fields)
        await self._release([agent_id], offer_id, record.call_id, event="decline", reason="declined")

    # The call leaves.

    async def transfer_to_agent(self, record: HandoffCall, target: str, *, ring_timeout_s: float) -> None:
        """The agent hands the call to a named colleague: it rings only there (a router then minds
        the ring timeout, like any offer)."""
        agent_id, call_id = record.agent_id or "", record.call_id
        call_next(record.state, "transfer_to_agent")
        if not (await self.presence.reserve([target]))[0]:
            raise HandoffError(f"agent {target!r} is not available")
        await self.presence.transition(agent_id, "call_ended")
        await self.tell_agent(agent_id, CallEnded(call_id, "transferred"))
        now = self._clock()
        offer_id, expires = f"{call_id}:{record.offer_seq + 1}", now + ring_timeout_s
        await self.calls.requeue(record, record.queue, offer={
            "state": HandoffState.OFFERED.value, "offer_id": offer_id, "offered_to": target,
            "offer_expires_at": expires, "offer_seq": record.offer_seq + 1})
        async with self._r.pipeline(transaction=False) as pipe:
            pipe.hdel(self._keys.live_calls, call_id)
            self.presence.mark_ringing(pipe, target, offer_id, now)
            pipe.publish(self._keys.agent_channel(target), encode(Offer(offer_id, record.context.waited(now),
                                                                        expires)))
            await pipe.execute()
        await self.tell_call(call_id, AgentLeft(call_id, agent_id, "transfer", requeued=True))

    async def caller_gone(self, record: HandoffCall, *, reason: str = "caller_hung_up") -> None:
        """The caller hung up (or their side was lost): withdraw the offer or end the agent's call, whichever is
        happening; the agent hears `reason`."""
        if record.final:
            return
        offer_id = record.offer_id
        if record.state is HandoffState.OFFERED and offer_id:
            if not await self.calls.claim_offer(offer_id, "caller_hung_up"):
                record = await self.calls.get(record.call_id)  # an agent took it in the meantime
                if record.state is not HandoffState.CONNECTED:
                    return
            else:
                await self._release(record.offered_to, offer_id, record.call_id, event="withdraw", reason=reason)
        # The agent may be hanging up at this very moment (then already wrapping up): only their call ends, and
        # only a desk still on it hears so (a second `call_ended` would reach it on its next call).
        if (
            record.state is HandoffState.CONNECTED and record.agent_id and not record.external
            and await self.presence.transition(record.agent_id, "call_ended", expect_call=record.call_id)
        ):
            await self.tell_agent(record.agent_id, CallEnded(record.call_id, reason))
        await self._finish(record, call_next(record.state, "caller_hung_up"))
        if reason == "caller_lost":  # its process may only have been slow to say it was there: never left in silence
            await self.tell_call(record.call_id, ReturnedToBot(record.call_id, "the caller's side stopped answering"))

    async def overflow(self, record: HandoffCall, action: str, target: str | None,
                       withdraw_offer: str | None, *, choices: tuple[str, ...] = (), choice_timeout_s: float = 0.0,
                       backup: str | None = None) -> bool:
        """The call leaves the queue for `action`; False (nothing done) when `record`, re-read by the caller, is
        no longer waiting or offered: settled elsewhere (answered, abandoned, overflowed) since the router's view."""
        if record.state not in (HandoffState.WAITING, HandoffState.OFFERED):
            return False
        if withdraw_offer:
            if not await self.calls.claim_offer(withdraw_offer, "overflow"):
                return False
            await self._release(record.offered_to, withdraw_offer, record.call_id, event="withdraw",
                                reason="overflow")
        await self._finish(record, call_next(record.state, "overflow"))
        target = target or (record.context.caller_number if action == "callback" else None)
        await self.tell_call(record.call_id, Overflow(record.call_id, action, target, choices,  # type: ignore[arg-type]
                                                      choice_timeout_s, backup))
        return True

    async def nobody_signed_in(self, outcome: NobodySignedIn) -> None:
        """No agent could take the call: the overflow choices at once, or back to the bot. The record is
        re-read, so a call another process already settled is left alone."""
        record = await self.calls.get(outcome.call_id)
        if record.state is not HandoffState.WAITING:
            return
        if outcome.overflow is not None:
            o = outcome.overflow
            await self.overflow(record, o.action, o.target, None, choices=o.choices,
                                choice_timeout_s=o.choice_timeout_s, backup=o.backup)
            return
        await self._finish(record, call_next(record.state, "no_agents"))
        await self.tell_call(record.call_id, ReturnedToBot(record.call_id, outcome.reason))

    async def close(self, record: HandoffCall, opens_at: float | None) -> None:
        await self._finish(record, call_next(record.state, "close"))
        await self.tell_call(record.call_id, Closed(record.call_id, record.queue, opens_at))

    async def _finish(self, record: HandoffCall, state: HandoffState) -> None:
        async with self._r.pipeline(transaction=False) as pipe:
            self.calls.finish(pipe, record, state)
            await pipe.execute()

    async def connected_record(self, agent_id: str, call_id: str) -> HandoffCall:
        record = await self.calls.get(call_id)
        if record.state is not HandoffState.CONNECTED or record.agent_id != agent_id or record.external:
            raise NotYourCall(f"agent {agent_id!r} is not connected to call {call_id!r}")
        return record

    async def complete_transfer(self, record: HandoffCall, target: str) -> None:
        """An attended transfer completes: the caller stays connected, now to `target` (bridged by callpilot);
        the agent's part ends (wrap-up)."""
        agent_id = record.agent_id or ""
        await self.calls.update(record.call_id, external=target, consult="", on_hold="0")
        await self.presence.transition(agent_id, "call_ended")
        await self.tell_agent(agent_id, CallEnded(record.call_id, "transferred"))

    async def external_gone(self, record: HandoffCall) -> None:
        """The outside party of a completed attended transfer hung up: the call ends (the caller hears BYE)."""
        if record.final:
            return
        await self._finish(record, call_next(record.state, "hang_up"))
        await self.tell_call(record.call_id, AgentLeft(record.call_id, record.agent_id or "", "hangup"))

    async def agent_leaves(self, record: HandoffCall, reason: LeftReason, *, requeue_to: str | None,
                           disconnect: bool = False, target: str | None = None) -> None:
        """The agent's part of a connected call ends; the call goes back to a queue or to the bot."""
        agent_id = record.agent_id or ""
        await self.presence.transition(agent_id, "disconnect" if disconnect else "call_ended")
        ended = {"hangup": "agent_hung_up", "hand_back": "handed_back", "transfer": "transferred",
                 "transfer_out": "transferred", "disconnected": "agent_disconnected"}[reason]
        if not disconnect:
            await self.tell_agent(agent_id, CallEnded(record.call_id, ended))
        if requeue_to is not None:
            call_next(record.state, "requeue")
            await self.calls.requeue(record, requeue_to)
            await self._r.hdel(self._keys.live_calls, record.call_id)
            await self.tell_call(record.call_id, AgentLeft(record.call_id, agent_id, reason, requeued=True))
            return
        event = {"hangup": "hang_up", "transfer_out": "hang_up", "hand_back": "hand_back"}.get(reason, "no_agents")
        await self._finish(record, call_next(record.state, event))
        await self.tell_call(record.call_id, AgentLeft(record.call_id, agent_id, reason, target=target))
        if event == "no_agents":
            await self.tell_call(record.call_id, ReturnedToBot(record.call_id, f"no {record.queue} agent is "
                                                                               "logged in"))


def _offer_json(ring: Ring, context_json: str, now: float) -> str:
    """The Offer as `encode` writes it, straight from the stored context JSON (the router's hot path)."""
    context = json.loads(context_json)
    context["wait_s"] = round(max(0.0, now - float(context["requested_at"])), 3)
    return json.dumps({"kind": Offer.kind, "offer_id": ring.offer_id, "context": context,
                       "expires_at": ring.expires_at}, separators=(",", ":"))


def _taken_message(offer_id: str, owner: str | None) -> str:
    if owner is None:
        return f"offer {offer_id} is no longer ringing for you"
    if owner in ("timeout", "caller_hung_up", "overflow") or owner.startswith("declined"):
        return f"offer {offer_id} has ended ({owner.replace('_', ' ')})"
    return f"offer {offer_id} was already taken by agent {owner}"


__all__ = ["CallMoves", "HandoffError", "call_id_of"]
