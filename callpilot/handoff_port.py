"""The voice pipeline's `HandoffPort`, carried out by the handoff service and its Redis audio bridge.

`voice_gateway.pipeline` does not import `handoff`; this is the one place that knows both, translating
the service's call updates into the pipeline's leg updates, and agent audio into PCM frames and holds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from bot.dialogue import DialogueEngine, HandoffDecision
from bot.dialogue.state import Turn
from callpilot.records.redaction import redact_stored
from callpilot.settings import Settings
from handoff import build_service
from handoff.bridge import AudioBridge, HoldSignal, bridge_client
from handoff.contacts import ContactLookup
from handoff.errors import HandoffError
from handoff.events import AgentConnected, AgentLeft, CallUpdate, Closed, Overflow, QueuePosition, ReturnedToBot
from handoff.service import HandoffService
from voice_gateway.call_log import CallLog, LifecycleKind
from voice_gateway.pipeline.handoff_port import (
    AgentGone,
    AgentJoined,
    BackToBot,
    Hold,
    InQueue,
    LegUpdate,
    NoAgent,
    QueueClosed,
)

log = logging.getLogger("callpilot.handoff")

RETRY_MAX_S = 30.0  # the longest wait between two attempts to reach Redis


def leg_update(update: CallUpdate) -> LegUpdate:
    """The service's words for what happened, in the pipeline's."""
    match update:
        case QueuePosition(position=position, expected_wait_s=wait):
            return InQueue(position, wait)
        case AgentConnected(agent_id=agent_id, name=name):
            return AgentJoined(agent_id, name)
        case AgentLeft(reason=reason, requeued=requeued, target=target):
            return AgentGone(reason, requeued, target)
        case Overflow(action=action, target=target):
            return NoAgent(action, target, update.choices, update.choice_timeout_s, update.backup)
        case Closed(opens_at=opens_at):
            return QueueClosed(opens_at)
        case ReturnedToBot(reason=reason):
            return BackToBot(reason)
    raise TypeError(f"unexpected call update {update!r}")


class ServicePort:
    """`HandoffPort` over a running `HandoffService` and an `AudioBridge` (both on the same Redis)."""

    def __init__(self, service: HandoffService, bridge: AudioBridge) -> None:
        self.service = service
        self.bridge = bridge

    async def request(self, call_id: str, decision: HandoffDecision, *, language: str) -> None:
        await self.service.request(call_id, decision, language=language)

    async def updates(self, call_id: str) -> AsyncIterator[LegUpdate]:
        async for update in self.service.call_events(call_id):
            yield leg_update(update)

    async def caller_hung_up(self, call_id: str) -> None:
        await self.service.caller_hung_up(call_id)

    async def send_to_agent(self, call_id: str, pcm16: bytes) -> None:
        await self.bridge.to_agent(call_id, pcm16)

    async def from_agent(self, call_id: str) -> AsyncIterator[bytes | Hold]:
        async with self.bridge.listen(call_id, "caller") as heard:
            async for item in heard:
                if isinstance(item, HoldSignal):
                    yield Hold(item.on)
                elif isinstance(item, bytes):
                    yield item

    async def key_to_agent(self, call_id: str, digit: str) -> None:
        await self.bridge.caller_key(call_id, digit)

    async def request_callback(self, call_id: str) -> str:
        return (await self.service.request_callback(call_id)).number

    async def transcript_line(self, call_id: str, speaker: str, text: str) -> None:
        await self.bridge.said(call_id, speaker, text)

    async def caller_here(self, call_id: str) -> None:
        await self.service.caller_here(call_id)


def bot_resumer(engine: DialogueEngine, clock: Callable[[], float] = time.time) -> Callable[[str], None]:
    """`resume_bot(call_id)`: the conversation leaves handoff mode, so the caller's next words reach the bot."""

    def resume(call_id: str) -> None:
        state = engine.store.load(call_id)
        if state is None or state.mode != "handoff":
            return
        state.set_mode("speech")
        state.transcript.append(Turn("system", "handed back to the bot", clock()))
        engine.store.save(state)

    return resume


WrapUpLog = Callable[[dict[str, Any]], None]


def wrap_up_to_file(path: Path | None) -> WrapUpLog:
    """Append an agent's wrap-up to the JSON-lines call log beside the call's own events.

    Its own `CallLog` without listeners: the records get wrap-ups straight from the runtime, whether or not
    the voice models (and the pipeline's call log with its listeners) are loaded.
    """
    call_log = CallLog(path, redact=redact_stored)

    def record(outcome: dict[str, Any]) -> None:
        data = {k: v for k, v in outcome.items() if k not in ("call_id", "kind")}
        call_log.record(str(outcome["call_id"]), LifecycleKind.HANDOFF, 0, stage="wrap_up", **data)

    return record


class HandoffRuntime:
    """The handoff service and audio bridge of this process: started in the app's lifespan, shared by the agent
    desktop (`deps()`) and the voice gateway (`port`). Redis down at start: a clear error, calls stay with the
    bot, and the runtime keeps trying until Redis answers.

    `contacts` finds the caller for the agent's screen pop (the records' SQL table or CRM adapter); each wrap-up
    goes to every sink in `wrap_up_sinks` (the records writer, the call-log file); one failing does not stop the
    others.
    """

    def __init__(self, settings: Settings, *, wrap_up_sinks: tuple[WrapUpLog, ...] = (),
                 contacts: ContactLookup | None = None) -> None:
        self.settings = settings
        self.service: HandoffService | None = None
        self.bridge: AudioBridge | None = None
        self.port: ServicePort | None = None
        self.error: str | None = None
        self.contacts = contacts
        self._wrap_up_sinks = wrap_up_sinks
        self._on_ready: list[Callable[[ServicePort], None]] = []
        self._retrying: asyncio.Task[None] | None = None

    async def _record_wrap_up(self, outcome: dict[str, Any]) -> None:
        for sink in self._wrap_up_sinks:
            try:
                sink(outcome)
            except Exception:  # the agent's wrap-up must not fail because one place to keep it is broken
                log.exception("wrap-up of call %s: %r failed", outcome.get("call_id"), sink)

    def when_ready(self, use: Callable[[ServicePort], None]) -> None:
        """`use` gets the port once the service is up (at start, or later when Redis comes back)."""
        self._on_ready.append(use)
        if self.port is not None:
            use(self.port)

    async def start(self) -> None:
        """Start the service; if Redis cannot be reached, say so clearly and keep trying in the background
        (calls stay with the bot meanwhile), then hand the port to those waiting for it (`when_ready`)."""
        if not await self._try_start():
            self._retrying = asyncio.create_task(self._retry(), name="handoff-retry")

    async def _try_start(self) -> bool:
        service = build_service(self.settings, contacts=self.contacts, wrap_up_sink=self._record_wrap_up,
                                redact=redact_stored)
        try:
            await service.start()
        except HandoffError as exc:
            if self.error is None:
                log.error("handoff unavailable (retrying every %s s; calls stay with the bot): %s",
                          RETRY_MAX_S, exc)
            self.error = str(exc)
            return False
        self.service, self.bridge = service, AudioBridge(bridge_client(self.settings.redis_url))
        self.port = ServicePort(service, self.bridge)
        if self.error is not None:
            log.warning("handoff available again: Redis reached")
        self.error = None
        for use in self._on_ready:
            use(self.port)
        return True

    async def _retry(self) -> None:
        delay = 1.0
        while True:
            await asyncio.sleep(delay)
            if await self._try_start():
                return
            delay = min(delay * 2, RETRY_MAX_S)

    @property
    def status(self) -> str:
        if self.service is not None:
            return "ready"
        return "unavailable" if self.error is not None else "starting"

    async def stop(self) -> None:
        if self._retrying is not None:
            self._retrying.cancel()
        if self.service is not None:
            await self.service.stop()

    def deps(self) -> tuple[HandoffService, AudioBridge] | None:
        if self.service is None or self.bridge is None:
            return None
        return self.service, self.bridge
