"""Attended transfers: the agent first talks to the outside party, then hands the caller over.

The desk asks on the handoff's consult channel (`HandoffService.consult`); the process with a SIP endpoint takes
the request (one process: SET NX on the call's consult lock), dials the target and relays its audio to the agent
(`consult_down`) and the agent's to it (`consult_up`) while the caller hears hold music. `complete`: the same call
is then relayed to the caller instead (`to_caller` / `to_agent` on the bridge, the caller's leg taken off hold),
so callers on any transport can be handed over; the target hanging up then ends the caller's call, and the
caller hanging up ends the target's. `hang_up` (the agent cancels), a failure to reach the target, or the call
leaving the agent ends the consultation; the agent hears which in a ConsultUpdate.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable

from callpilot.sip_bridge import bridge_to_rtp, hang_up, rtp_to_bridge
from callpilot.sip_out import SipDialler
from handoff.bridge import AudioBridge
from handoff.errors import HandoffError
from handoff.events import ConsultUpdate
from handoff.redis_conn import messages
from handoff.service import HandoffService
from voice_gateway.transports.sip.call import SipCall
from voice_gateway.transports.sip.outbound import DialFailed

log = logging.getLogger("callpilot.consult")
Deps = Callable[[], tuple[HandoffService, AudioBridge] | None]
LOCK_S = 4 * 3600.0
RATE = 8000


class ConsultLeg:
    """One consultation call, from dialling to the end of the (possibly completed) transfer."""

    def __init__(self, service: HandoffService, bridge: AudioBridge, dialler: SipDialler, *, call_id: str,
                 agent_id: str, target: str, ring_timeout_s: float = 30.0) -> None:
        self.service, self.bridge, self.dialler = service, bridge, dialler
        self.call_id, self.agent_id, self.target, self.ring_timeout_s = call_id, agent_id, target, ring_timeout_s
        self.completed = asyncio.Event()
        self.stop = asyncio.Event()
        self.phone: SipCall | None = None

    async def _tell(self, state: str, detail: str = "") -> None:
        with contextlib.suppress(HandoffError, OSError):
            await self.service.consult_update(self.agent_id, ConsultUpdate(self.call_id, state, self.target, detail))

    async def run(self) -> None:
        await self._tell("dialling")
        try:
            call = await self.dialler.dial(self.target, ring_timeout_s=self.ring_timeout_s, cancelled=self.stop)
        except DialFailed as exc:
            await self._tell("failed" if exc.outcome != "cancelled" else "ended", exc.outcome)
            return
        self.phone = call
        await self._tell("talking")
        tasks = {asyncio.create_task(self._from_target(call)), asyncio.create_task(self._to_target(call)),
                 asyncio.create_task(self._watch())}
        _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        target_left = call.bye_sent  # its BYE came first
        await hang_up(call, "consult_over")
        if self.completed.is_set():
            if target_left:  # the caller's call ends with it
                with contextlib.suppress(HandoffError):
                    await self.service.external_hung_up(self.call_id)
        else:
            await self._tell("ended", "target_hung_up" if target_left else "cancelled")

    async def _from_target(self, call: SipCall) -> None:
        """The target's voice: to the agent while consulting, to the caller once completed."""
        async def publish(frame: bytes) -> None:
            if self.completed.is_set():
                await self.bridge.to_caller(self.call_id, frame)
            else:
                await self.bridge.from_consulted(self.call_id, frame)

        await rtp_to_bridge(call, publish)

    async def _to_target(self, call: SipCall) -> None:
        """What the target hears: the agent while consulting, then the caller."""
        listening = asyncio.create_task(self._relay(call, "consult_target"))
        await self.completed.wait()
        listening.cancel()
        await self._relay(call, "agent")  # the caller's side of the bridge: what the caller says

    async def _relay(self, call: SipCall, side: str) -> None:
        async with self.bridge.listen(self.call_id, side) as heard:  # type: ignore[arg-type]
            await bridge_to_rtp(call, heard)

    async def _watch(self) -> None:
        """The consultation ends when the agent cancels, or the call leaves the agent (hung up, browser gone)."""
        while not self.stop.is_set():
            await asyncio.sleep(0.5)
            try:
                record = await self.service.calls.get(self.call_id)
            except HandoffError:
                return
            if record.external == self.target and not self.completed.is_set():
                await self.complete()  # the desk's "complete" reached the record before its message reached us
            if record.final or (not self.completed.is_set() and record.consult != self.target):
                return

    async def complete(self) -> None:
        self.completed.set()
        await self.bridge.set_hold(self.call_id, False)  # the caller's leg plays the target again



class ConsultService:
    """Takes consultation requests from the desks (any process) for this process's SIP endpoint."""

    def __init__(self, deps: Deps, dialler: SipDialler, *, owner: str, ring_timeout_s: float = 30.0) -> None:
        self.deps, self.dialler, self.owner, self.ring_timeout_s = deps, dialler, owner, ring_timeout_s
        self.legs: dict[str, ConsultLeg] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        while (found := self.deps()) is None:
            await asyncio.sleep(1.0)
        service, bridge = found
        async for text in messages(service.client, service.keys.consult_channel):
            if text is None:
                continue
            try:
                request = json.loads(text)
                action, call_id = str(request["action"]), str(request["call_id"])
            except (ValueError, KeyError, TypeError):
                log.warning("consult: unreadable request %r", text[:200])
                continue
            if action == "dial":
                if not await service.client.set(service.keys.consult_lock(call_id), self.owner, nx=True,
                                                 px=int(LOCK_S * 1000)):
                    continue  # another process (or an older consultation of this call) has it
                leg = ConsultLeg(service, bridge, self.dialler, call_id=call_id, agent_id=str(request["agent_id"]),
                                 target=str(request["target"]), ring_timeout_s=self.ring_timeout_s)
                self.legs[call_id] = leg
                task = asyncio.create_task(self._run_leg(service, leg), name=f"consult-{call_id}")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                continue
            running = self.legs.get(call_id)
            if running is not None and action == "complete":
                await running.complete()
            elif running is not None and action == "hang_up":
                running.stop.set()

    async def _run_leg(self, service: HandoffService, leg: ConsultLeg) -> None:
        try:
            await leg.run()
        except Exception:
            log.exception("consultation of call %s failed", leg.call_id)
        finally:
            self.legs.pop(leg.call_id, None)
            with contextlib.suppress(Exception):
                await service.client.delete(service.keys.consult_lock(leg.call_id))
