"""Callbacks are dialled: a caller who chose a callback (or one a supervisor scheduled) is called back through
the SIP trunk (or Twilio's Calls API on a Twilio line) at the time chosen, else as soon as an agent of the
queue is free, and only while the queue is open. One process dials each callback (a Redis lock).

When the caller answers, the call runs through the pipeline like any other: the bot says who is calling and
why, and the call joins the queue with the original call's context (transcript, intents, slots) and priority
(`callback_opening`). Busy, no answer or an unreachable number: tried again after `retry_s` (a back-off), up to
`max_attempts`; then the callback is `failed`. Every attempt and the final state are on the supervisor page
(`CallbackRequest.state`, `outcomes`) and in the original call's record (`extra["callback"]`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import urlencode

from bot.dialogue import HandoffDecision
from bot.dialogue.engine import BotTurn
from callpilot.sip_out import SipDialler
from handoff.errors import HandoffError
from handoff.model import AgentStatus, CallbackRequest, HandoffContext
from handoff.service import HandoffService
from voice_gateway.transports.sip.outbound import DialFailed
from voice_gateway.transports.sip.server import SipServer
from voice_gateway.twilio_rest import OUTCOMES as TWILIO_OUTCOMES
from voice_gateway.twilio_rest import TwilioError, TwilioRest

log = logging.getLogger("callpilot.callbacks")

# (outcome, the callback call's id): outcome "answered", or a DialFailed outcome (busy, no_answer, ...)
Place = Callable[[CallbackRequest], Awaitable[tuple[str, str | None]]]
RETRIED = frozenset({"busy", "no_answer", "unreachable", "rejected"})
OPENING = "utter_callback_opening"  # in nlu_data/domain.yml and nlu_data/zh/responses.yml


class CallbackDialler:
    """Looks at the callback list every `poll_s` and dials what is due; `run()` until cancelled."""

    def __init__(self, deps: Callable[[], HandoffService | None], place: Place, *, max_attempts: int = 3,
                 retry_s: Sequence[float] = (120.0, 600.0), ring_timeout_s: float = 30.0, poll_s: float = 2.0,
                 clock: Callable[[], float] = time.time,
                 on_change: Callable[[CallbackRequest], None] | None = None) -> None:
        if max_attempts < 1 or not retry_s:
            raise ValueError("callbacks need at least one attempt and one retry interval")
        self.deps, self.place = deps, place
        self.max_attempts, self.retry_s, self.ring_timeout_s = max_attempts, tuple(retry_s), ring_timeout_s
        self.poll_s, self.clock, self.on_change = poll_s, clock, on_change
        self.owner = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self._attempts: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        try:
            while True:
                try:
                    await self.tick()
                except (HandoffError, OSError, ConnectionError) as exc:  # Redis away: try again next time
                    log.warning("callbacks: %s", exc)
                await asyncio.sleep(self.poll_s)
        finally:
            for task in list(self._attempts):
                task.cancel()

    async def tick(self) -> list[str]:
        """Start dialling every due callback; returns their ids."""
        service = self.deps()
        if service is None:
            return []
        now, started = self.clock(), []
        for request in await service.callbacks.all():
            # "dialling" with nobody holding its lock: the process that dialled it died; it is tried again
            orphaned = request.state == "dialling"
            if not orphaned and (request.state != "pending" or request.next_attempt_at > now
                                 or request.attempts >= self.max_attempts):
                continue
            if not orphaned and not await self._can_call(service, request, now):
                continue
            lock_s = self.ring_timeout_s + 60.0
            if not await service.callbacks.claim(request.call_id, self.owner, lock_s):
                continue  # another process dials it
            if orphaned:
                log.warning("callback %s: the process dialling it stopped; dialling it again", request.call_id)
                request = dataclasses.replace(request, attempts=max(0, request.attempts - 1))
            task = asyncio.create_task(self._attempt(service, request), name=f"callback-{request.call_id}")
            self._attempts.add(task)
            task.add_done_callback(self._attempts.discard)
            started.append(request.call_id)
        return started

    async def _can_call(self, service: HandoffService, request: CallbackRequest, now: float) -> bool:
        """Within the queue's hours; at its time, or (no time chosen) once an agent of the queue is free."""
        if request.queue not in service.config.queues:
            return False
        hours = service.config.queue(request.queue).hours
        if hours is not None and not hours.is_open(now):
            return False
        if request.due_at is not None:
            return request.due_at <= now
        agents = service.directory.agents()
        for snapshot, _ in await service.presence.snapshot(agents):
            if snapshot.online and snapshot.status is AgentStatus.AVAILABLE and snapshot.skills.get(request.queue, 0):
                return True
        return False

    async def _attempt(self, service: HandoffService, request: CallbackRequest) -> None:
        request = dataclasses.replace(request, state="dialling", attempts=request.attempts + 1)
        try:
            if not await self._store(service, request):
                return  # taken off the list meanwhile
            try:
                outcome, call_id = await self.place(request)
            except Exception:  # a bug or an outage must not lose the callback: count it as unreachable
                log.exception("callback %s: dialling failed", request.call_id)
                outcome, call_id = "unreachable", None
            outcomes = (*request.outcomes, outcome)
            if outcome == "answered":
                request = dataclasses.replace(request, state="completed", outcomes=outcomes, callback_call_id=call_id)
            elif outcome in RETRIED and request.attempts < self.max_attempts:
                wait = self.retry_s[min(request.attempts - 1, len(self.retry_s) - 1)]
                request = dataclasses.replace(request, state="pending", outcomes=outcomes,
                                              next_attempt_at=self.clock() + wait)
            else:
                request = dataclasses.replace(request, state="failed", outcomes=outcomes)
            log.info("callback %s: attempt %d %s -> %s", request.call_id, request.attempts, outcome, request.state)
            await self._store(service, request)
        finally:
            with contextlib.suppress(HandoffError, OSError, ConnectionError):
                await service.callbacks.release(request.call_id)

    async def _store(self, service: HandoffService, request: CallbackRequest) -> bool:
        kept = await service.callbacks.update(request)
        if kept:
            await service.client.publish(service.keys.supervisor_channel,
                                         json.dumps({"kind": "callback_" + request.state, **request.to_dict()}))
            if self.on_change is not None:
                self.on_change(request)
        return kept


def sip_place(dialler: SipDialler, server: SipServer, *, ring_timeout_s: float) -> Place:
    """Callbacks through SIP (a number via the trunk, or a sip: address); answered, the call runs through the
    pipeline like any call (`SipServer.run_outbound`), with `callback_for` in its parameters."""

    async def place(request: CallbackRequest) -> tuple[str, str | None]:
        try:
            call = await dialler.dial(request.number, ring_timeout_s=ring_timeout_s,
                                      parameters={"callback_for": request.call_id})
        except DialFailed as exc:
            return exc.outcome, None
        server.run_outbound(call)
        return "answered", call.call_id

    return place


def twilio_place(rest: TwilioRest, *, from_number: str, voice_url: str, ring_timeout_s: float,
                 poll_s: float = 2.0) -> Place:
    """Callbacks through Twilio's Calls API: Twilio rings the number and, answered, fetches our voice webhook
    (`?callback_for=` the callback), whose media stream runs through the pipeline; the attempt's outcome is the
    call's status, read until it is known."""

    async def place(request: CallbackRequest) -> tuple[str, str | None]:
        url = f"{voice_url}?{urlencode({'callback_for': request.call_id})}"
        try:
            sid = await rest.create_call(request.number, from_number, url=url, timeout_s=int(ring_timeout_s))
        except TwilioError as exc:
            log.warning("callback %s: %s", request.call_id, exc)
            return ("rejected" if 400 <= exc.status < 500 else "unreachable"), None
        deadline = time.monotonic() + ring_timeout_s + 30.0
        while time.monotonic() < deadline:
            with contextlib.suppress(TwilioError):
                status = await rest.call_status(sid)
                if status in TWILIO_OUTCOMES:
                    return TWILIO_OUTCOMES[status], sid
            await asyncio.sleep(poll_s)
        return "no_answer", sid

    return place


def callback_decision(request: CallbackRequest, *, now: float) -> HandoffDecision:
    """The handoff a callback makes once answered: the original call's context and priority."""
    if request.context:
        context = HandoffContext.from_dict(request.context)
        return HandoffDecision(
            reason="callback", skill=request.queue, priority=request.priority, caller_number=request.number,
            transcript=tuple({"role": line.role, "text": line.text, "timestamp": line.timestamp,
                              "intent": line.intent, "confidence": line.confidence, "dtmf": line.dtmf}
                             for line in context.transcript),
            intents=tuple({"intent": i.intent, "confidence": i.confidence, "timestamp": i.timestamp}
                          for i in context.intents),
            slots=dict(context.slots), ivr_path=context.ivr_path,
            summary=f"Callback for call {request.call_id}: {context.summary}".strip(), created_at=now)
    return HandoffDecision(reason="callback", skill=request.queue, priority=request.priority,
                           caller_number=request.number, transcript=(), intents=(), slots={}, ivr_path=(),
                           summary=f"Callback scheduled for {request.number}", created_at=now)


def callback_opening(deps: Callable[[], HandoffService | None], say: Callable[[str, str], str | None]
                     ) -> Callable[[str, dict[str, str], BotTurn], Awaitable[BotTurn]]:
    """The first turn of an answered callback: who is calling (`say(response, language)`), then the handoff
    with the original context."""

    async def opening(call_id: str, parameters: dict[str, str], turn: BotTurn) -> BotTurn:
        service = deps()
        original = parameters.get("callback_for", "")
        request = await service.callbacks.get(original) if service is not None else None
        if request is None:
            return turn  # nothing known about it: the bot greets as usual
        language = str((request.context or {}).get("language") or turn.language or "en")
        text = say(OPENING, language) or say(OPENING, "en")
        return dataclasses.replace(turn, messages=(text,) if text else turn.messages, language=language,
                                   handoff=callback_decision(request, now=time.time()))

    return opening
