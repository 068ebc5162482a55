"""One agent's desktop connection: JSON control messages and binary PCM16 audio over the `/agent/ws` websocket.

The browser sends `{"type": ...}` messages (status, accept, decline, join, hold, transfer, hand_back,
hang_up, wrap_up, ping) and 20 ms PCM16 frames at 16 kHz from its microphone; we send the agent's
updates (offer, offer_withdrawn, call_ended, status_changed), `connected` when a call is bridged,
`caller_key` when the caller presses a key, `error`s, and the caller's audio as binary frames.
Everything the agent does goes through `HandoffService`; audio goes through the `AudioBridge`, so the call
may live in another process.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bot.urls import mask_urls_in
from handoff.bridge import BRIDGE_RATE, DIGITS, FRAME_BYTES, AudioBridge, BadAudio, CallerKey, SaidLine
from handoff.errors import (
    HandoffError,
    IllegalHandoffTransition,
    NotYourCall,
    OfferTaken,
    RedisUnavailable,
    UnknownCall,
    UnknownQueue,
)
from handoff.events import CallEnded, ConsultUpdate, OnPhone, SignedOut, to_dict
from handoff.model import Agent, AgentStatus
from handoff.redis_conn import TRANSIENT
from handoff.service import HandoffService
from handoff.tones import dtmf_pcm, frames

log = logging.getLogger(__name__)

SendJson = Callable[[dict[str, Any]], Awaitable[None]]
SendBytes = Callable[[bytes], Awaitable[None]]
CloseSocket = Callable[[int, str], Awaitable[None]]
SIGNED_OUT_CLOSE = 4403  # a supervisor signed the agent out

UNBRIDGE_WAIT_S = 2.0
AGENT_SETTABLE = {"available": AgentStatus.AVAILABLE, "away": AgentStatus.AWAY}


def agent_json(agent: Agent) -> dict[str, Any]:
    return {"agent_id": agent.agent_id, "name": agent.name, "skills": dict(agent.skills)}


def error_code(exc: HandoffError) -> int:
    """The HTTP status an error stands for (the websocket sends it in `error` messages too)."""
    if isinstance(exc, OfferTaken):
        return 409
    if isinstance(exc, (UnknownCall, UnknownQueue)):
        return 404
    if isinstance(exc, NotYourCall):
        return 403
    if isinstance(exc, IllegalHandoffTransition):
        return 409
    if isinstance(exc, RedisUnavailable):
        return 503
    return 400


class DeskSession:
    """An authenticated agent's session; `run_background()` pumps events, `receive_*` handle the browser."""

    def __init__(
        self, agent: Agent, service: HandoffService, bridge: AudioBridge, send_json: SendJson, send_bytes: SendBytes,
        close_socket: CloseSocket | None = None,
    ) -> None:
        self.agent, self.service, self.bridge = agent, service, bridge
        self._send_json, self._send_bytes, self._close_socket = send_json, send_bytes, close_socket
        self._keys: asyncio.Task[None] | None = None  # key tones on their way to the caller
        self.call_id: str | None = None  # the call the agent talks on (audio bridged)
        self.last_call_id: str | None = None  # the call to wrap up
        self.held = False
        self.consulting: str | None = None  # an attended transfer's target while the agent talks to it
        self._consult_audio: asyncio.Task[None] | None = None
        self._audio: asyncio.Task[None] | None = None
        self._events: asyncio.Task[None] | None = None
        self.frames_to_caller = 0
        self.frames_lost = 0  # the agent's audio dropped while Redis was unreachable
        self._ended: collections.deque[str] = collections.deque(maxlen=16)  # calls the desk was told had ended

    async def start(self) -> None:
        await self.service.heartbeat(self.agent.agent_id)  # present from the first moment, not the first ping
        runtime = await self.service.presence.state(self.agent.agent_id)
        await self._send_json({
            "type": "welcome", "agent": agent_json(self.agent),
            "status": runtime.status.value, "since": runtime.since or None,
            "dispositions": [d.model_dump() for d in self.service.config.dispositions]})
        self._events = asyncio.create_task(self._pump_events(), name=f"desk-events-{self.agent.agent_id}")

    async def _pump_events(self) -> None:
        """The agent's updates to the browser; the browser learns first, then a call that ended is unbridged
        (so a slow or failed audio task never keeps `call_ended` from the page). A call is known as ended before
        the page is told: a bridge finishing while `call_ended` is on its way must not say `connected` after it."""
        async for update in self.service.agent_events(self.agent.agent_id):
            if isinstance(update, CallEnded):
                self._ended.append(update.call_id)
            try:
                await self._send_json({"type": update.kind, **to_dict(update)})
            except Exception:  # the browser is gone: close() moves the call on
                log.info("agent %s: desktop gone, %s not sent", self.agent.agent_id, update.kind)
                return
            if isinstance(update, SignedOut):
                if self._close_socket is not None:
                    with contextlib.suppress(Exception):
                        await self._close_socket(SIGNED_OUT_CLOSE, "signed out by a supervisor")
                return
            if isinstance(update, CallEnded) and update.call_id == self.call_id:
                await self._unbridge()
            if isinstance(update, OnPhone) and self.call_id is None:
                await self._on_phone_call(update.call_id)
            if isinstance(update, ConsultUpdate) and update.state in ("failed", "ended"):
                await self._end_consult()

    # From the browser.

    async def receive_text(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        handler = getattr(self, f"_on_{kind}", None) if isinstance(kind, str) and kind.isidentifier() else None
        if handler is None:
            await self.error(400, f"unknown message type {str(kind)[:40]!r}")
            return
        try:
            await handler(message)
        except HandoffError as exc:
            await self.error(error_code(exc), str(exc), request=kind)
        except TRANSIENT as exc:  # Redis restarting: the desk stays connected and may try again
            log.warning("agent %s: %r not done, Redis unreachable (%s)", self.agent.agent_id, kind, exc)
            await self.error(503, f"the floor's Redis is unreachable, try again: {mask_urls_in(str(exc))}",
                             request=kind)
        except (KeyError, TypeError, ValueError) as exc:
            await self.error(400, f"bad {kind!r} message: {exc}", request=kind)

    async def receive_audio(self, pcm16: bytes) -> None:
        """The agent's microphone: to the caller while bridged and not on hold, otherwise dropped."""
        if self.call_id is not None and self.consulting is not None:  # the agent talks to the consulted party
            try:
                await self.bridge.to_consulted(self.call_id, pcm16)
            except BadAudio as exc:
                await self.error(400, str(exc))
            return
        if self.call_id is None or self.held:
            return
        try:
            await self.bridge.to_caller(self.call_id, pcm16)
            self.frames_to_caller += 1
        except BadAudio as exc:
            await self.error(400, str(exc))
        except TRANSIENT as exc:  # Redis restarting: this frame is lost, the call goes on
            self.frames_lost += 1
            if self.frames_lost == 1:
                log.warning("agent %s: audio to the caller lost, Redis unreachable (%s)", self.agent.agent_id, exc)

    async def error(self, code: int, message: str, **extra: Any) -> None:
        await self._send_json({"type": "error", "code": code, "message": message, **extra})

    async def _on_phone_call(self, call_id: str) -> None:
        """The agent answered on their phone: the desktop shows the call (its controls act on it), no audio here."""
        self.last_call_id = call_id
        with contextlib.suppress(Exception):
            await self._send_json({"type": "connected", "call_id": call_id, "context": None, "on_phone": True})

    async def _on_ping(self, message: dict[str, Any]) -> None:
        await self.service.heartbeat(self.agent.agent_id)
        await self._send_json({"type": "pong"})

    async def _on_status(self, message: dict[str, Any]) -> None:
        status = AGENT_SETTABLE.get(str(message.get("status")))
        if status is None:
            raise ValueError(f"status must be one of {sorted(AGENT_SETTABLE)}, got {message.get('status')!r}")
        await self.service.set_status(self.agent.agent_id, status)

    async def _on_accept(self, message: dict[str, Any]) -> None:
        context = await self.service.accept(self.agent.agent_id, str(message["offer_id"]))
        await self.bridge_call(context.call_id, context.to_dict())

    async def _on_decline(self, message: dict[str, Any]) -> None:
        await self.service.decline(self.agent.agent_id, str(message["offer_id"]))

    async def _on_join(self, message: dict[str, Any]) -> None:
        """After an accept through the REST route: bridge the call if it is really this agent's."""
        call_id = str(message["call_id"])
        view = await self.service.snapshot()
        if not any(c.call_id == call_id and c.agent_id == self.agent.agent_id for c in view.live_calls):
            raise NotYourCall(f"call {call_id} is not connected to {self.agent.agent_id}")
        await self.bridge_call(call_id, None)

    async def _on_hold(self, message: dict[str, Any]) -> None:
        call_id = await self._current()
        self.held = bool(message.get("on"))
        await self.service.hold(self.agent.agent_id, call_id, self.held)  # the supervisor sees it
        await self.bridge.set_hold(call_id, self.held)
        await self._send_json({"type": "hold", "on": self.held, "call_id": call_id})

    async def _on_key(self, message: dict[str, Any]) -> None:
        """The agent presses a phone key for the caller's side (another company's menu, a PIN): its tone is
        mixed into what the caller hears, one 20 ms frame every 20 ms; keys pressed quickly queue up."""
        digit = str(message.get("digit", ""))
        if digit not in DIGITS:
            raise ValueError(f"not a phone key: {digit[:4]!r} (0-9, *, #, A-D)")
        call_id = await self._current()
        previous = self._keys

        async def play() -> None:
            if previous is not None:
                await asyncio.wait({previous})
            for frame in frames(dtmf_pcm(digit, BRIDGE_RATE), FRAME_BYTES):
                await self.bridge.mix_to_caller(call_id, frame)
                await asyncio.sleep(0.02)

        self._keys = asyncio.create_task(play(), name=f"desk-key-{call_id}")
        await self._send_json({"type": "key_sent", "call_id": call_id, "digit": digit})

    async def _on_transfer(self, message: dict[str, Any]) -> None:
        queue, to_agent = message.get("queue") or None, message.get("agent") or None
        number = str(message["number"]) if message.get("number") else None
        if sum(x is not None for x in (queue, to_agent, number)) != 1:
            raise ValueError("transfer needs exactly one of 'queue', 'agent' or 'number'")
        call_id = await self._current()
        await self.service.transfer(self.agent.agent_id, call_id, queue=queue, to_agent=to_agent, number=number)
        await self._unbridge()

    async def _on_consult(self, message: dict[str, Any]) -> None:
        """Attended transfer, step 1: the caller on hold, the agent talks to `number` first."""
        call_id = await self._current()
        if self.consulting is not None:
            raise ValueError(f"already consulting {self.consulting}")
        number = str(message["number"])
        await self.service.consult(self.agent.agent_id, call_id, number)
        self.held, self.consulting = True, number.strip()
        await self.bridge.set_hold(call_id, True)
        ready = asyncio.Event()
        self._consult_audio = asyncio.create_task(self._pump_consult(call_id, ready), name=f"consult-{call_id}")
        await asyncio.wait({asyncio.ensure_future(ready.wait()), self._consult_audio},
                           return_when=asyncio.FIRST_COMPLETED)
        await self._send_json({"type": "hold", "on": True, "call_id": call_id})

    async def _on_complete_transfer(self, message: dict[str, Any]) -> None:
        """Attended transfer, step 2: the caller goes to the consulted party; the agent's call ends."""
        call_id = await self._current()
        await self.service.consult_action(self.agent.agent_id, call_id, "complete")
        await self._end_consult()
        await self._unbridge()

    async def _on_cancel_consult(self, message: dict[str, Any]) -> None:
        """The consulted party is hung up; the caller stays on hold with the agent."""
        await self.service.consult_action(self.agent.agent_id, await self._current(), "hang_up")
        await self._end_consult()

    async def _pump_consult(self, call_id: str, ready: asyncio.Event) -> None:
        async with self.bridge.listen(call_id, "consult_agent") as heard:
            ready.set()
            async for item in heard:
                if isinstance(item, bytes) and self.consulting is not None:
                    await self._send_bytes(item)

    async def _end_consult(self) -> None:
        task, self._consult_audio, self.consulting = self._consult_audio, None, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task}, timeout=UNBRIDGE_WAIT_S)

    async def _on_hand_back(self, message: dict[str, Any]) -> None:
        call_id = await self._current()
        await self.service.hand_back(self.agent.agent_id, call_id)
        await self._unbridge()

    async def _on_hang_up(self, message: dict[str, Any]) -> None:
        call_id = await self._current()
        await self.service.hang_up(self.agent.agent_id, call_id)
        await self._unbridge()

    async def _on_wrap_up(self, message: dict[str, Any]) -> None:
        call_id = str(message.get("call_id") or self.last_call_id or "")
        disposition = str(message.get("disposition") or "").strip()
        if not call_id:
            raise ValueError("no call to wrap up")
        if not disposition:
            raise ValueError("a disposition code is required")
        codes = [d.code for d in self.service.config.dispositions]
        if disposition not in codes:
            raise ValueError(f"unknown disposition {disposition[:40]!r} (one of: {', '.join(codes)})")
        await self.service.wrap_up(self.agent.agent_id, call_id, disposition, str(message.get("notes") or ""))
        self.last_call_id = None
        await self._send_json({"type": "wrapped_up", "call_id": call_id})

    # Audio.

    async def _current(self) -> str:
        """The call the desktop acts on: the one bridged here, else the one the agent took on their phone."""
        if self.call_id is not None:
            return self.call_id
        runtime = await self.service.presence.state(self.agent.agent_id)
        if runtime.status is AgentStatus.ON_CALL and runtime.call_id:
            return runtime.call_id
        raise NotYourCall("you are not on a call")

    async def bridge_call(self, call_id: str, context: dict[str, Any] | None) -> None:
        """Start hearing the caller; the browser is told with a `connected` message - unless the call ended
        meanwhile (the caller hung up as the agent answered): `connected` never follows its `call_ended`."""
        if call_id in self._ended:
            return
        await self._unbridge()
        self.call_id = self.last_call_id = call_id
        self.held = False
        ready = asyncio.Event()
        self._audio = asyncio.create_task(self._pump_audio(call_id, ready), name=f"desk-audio-{call_id}")
        await asyncio.wait({asyncio.ensure_future(ready.wait()), self._audio}, return_when=asyncio.FIRST_COMPLETED)
        if call_id in self._ended:
            return
        await self._send_json({"type": "connected", "call_id": call_id, "context": context})

    async def _pump_audio(self, call_id: str, ready: asyncio.Event) -> None:
        async with self.bridge.listen(call_id, "agent") as heard:
            ready.set()
            async for item in heard:
                if isinstance(item, CallerKey):
                    await self._send_json({"type": "caller_key", "call_id": call_id, "digit": item.digit})
                elif isinstance(item, SaidLine):
                    await self._send_json({"type": "transcript", "call_id": call_id, "speaker": item.speaker,
                                           "text": item.text})
                elif isinstance(item, bytes) and not self.held:
                    await self._send_bytes(item)

    async def _unbridge(self) -> None:
        """Stop the caller's audio to this desktop; waits a moment for the task, never for its failures."""
        task, self._audio, self.call_id = self._audio, None, None
        if task is None:
            return
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=UNBRIDGE_WAIT_S)
        if task in done and not task.cancelled() and task.exception() is not None:
            log.warning("agent %s: the call's audio stopped with %r", self.agent.agent_id, task.exception())

    async def close(self) -> None:
        """The browser went away: a live call goes back to the queue or the bot (the service decides); stop pumping."""
        call_id, self.call_id = self.call_id, None  # no more audio to the caller from this session
        try:
            await self.service.agent_disconnected(self.agent.agent_id)
        except HandoffError:
            log.exception("agent %s: disconnect not recorded (call %s)", self.agent.agent_id, call_id)
        await self._end_consult()
        await self._unbridge()
        if self._keys is not None:
            self._keys.cancel()
        if self._events is not None:
            self._events.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):  # the pump may have died with the socket
                await self._events
