"""Agents on phones: a SIP phone (registered to callpilot, or at a fixed address) or a number through the trunk
rings for an agent's calls exactly as the desktop does, because it listens to the same agent updates.

An agent whose phone registers is signed in (available) while the registration lasts; an agent with a fixed
phone or a number is on duty while callpilot runs. For each `Offer` the ACD makes, the agent's phone is dialled
(the caller's number shown as the calling number); the first phone or desktop to answer takes the call
(`HandoffService.accept`: one winner) and every other ringing phone gets a CANCEL. On answer the agent hears a
short whisper ("orders queue, caller waited 40 seconds"), then the caller, through the same Redis audio bridge
as the desktop (16 kHz PCM frames; G.711 at 8 kHz on the phone's side). The phone's re-INVITE with
sendonly/inactive puts the caller on hold; its BYE hangs up; the caller hanging up (or the desktop hanging up)
sends BYE to the phone. After the call the agent is wrapped up as "phone" after `wrap_up_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from callpilot.sip_bridge import bridge_to_rtp, hang_up, rtp_to_bridge
from callpilot.sip_out import NUMBER, SipDialler
from handoff.bridge import AudioBridge
from handoff.errors import HandoffError
from handoff.events import CallEnded, Offer, OfferWithdrawn, OnPhone, decode_agent_update
from handoff.model import Agent, AgentStatus, HandoffContext
from handoff.redis_conn import messages
from handoff.service import HandoffService
from voice_gateway.audio import FrameBuffer, frame_bytes, resample_pcm16
from voice_gateway.transports.sip.call import SipCall
from voice_gateway.transports.sip.message import uri_user
from voice_gateway.transports.sip.outbound import DialFailed

log = logging.getLogger("callpilot.phones")

Deps = Callable[[], tuple[HandoffService, AudioBridge] | None]
Speak = Callable[[str], Any]  # async: text -> PCM16 at 8 kHz (b"" when no voice is available)
RATE = 8000
FRAME = frame_bytes(RATE)
QUEUE_NAMES_ZH = {"orders": "订单", "returns": "退货", "billing": "账单", "tech": "技术", "general": "综合"}


def whisper_text(context: HandoffContext) -> str:
    """What the agent hears before the caller: the queue and the wait (in the call's language)."""
    waited = round(context.wait_s)
    if context.language == "zh":
        queue = QUEUE_NAMES_ZH.get(context.queue, context.queue)
        return f"{queue}队列，来电已等待{waited}秒。"
    return f"{context.queue.replace('_', ' ')} queue, caller waited {waited} seconds."


class PhoneSession:
    """One agent on a phone: present on the floor, ringing the phone for each offer, talking on the bridge."""

    def __init__(self, agent: Agent, deps: Deps, dialler: SipDialler, speak: Speak, *, wrap_up_s: float) -> None:
        self.agent, self.deps, self.dialler, self.speak = agent, deps, dialler, speak
        self.wrap_up_s = wrap_up_s
        self.ringing: dict[str, asyncio.Event] = {}  # offer id -> set to stop ringing
        self.call_id: str | None = None
        self.phone_call: SipCall | None = None
        self.held = False
        self.frames_to_caller = 0
        self._call_over = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._main: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._main = asyncio.create_task(self._run(), name=f"phone-{self.agent.agent_id}")

    async def stop(self) -> None:
        """The phone left (unregistered) or callpilot stops: off the floor; a live call goes back to the queue."""
        for event in self.ringing.values():
            event.set()
        if self._main is not None:
            self._main.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._main
        found = self.deps()
        if found is not None and self.phone_call is None:
            with contextlib.suppress(HandoffError, OSError):
                await found[0].agent_disconnected(self.agent.agent_id)
        for task in list(self._tasks):
            task.cancel()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self) -> None:
        while (found := self.deps()) is None:  # the handoff service waits for Redis
            await asyncio.sleep(1.0)
        service, _ = found
        agent_id = self.agent.agent_id
        beat = asyncio.create_task(self._heartbeat(service))
        try:
            subscription = messages(service.client, service.keys.agent_channel(agent_id))
            async for text in subscription:
                if text is None:  # subscribed (and every idle second): make sure the agent is on the floor
                    if (await service.presence.state(agent_id)).status is AgentStatus.OFFLINE:
                        await service.set_status(agent_id, AgentStatus.AVAILABLE)
                    continue
                update = decode_agent_update(text)
                if isinstance(update, Offer) and update.offer_id not in self.ringing and self.call_id is None:
                    self.ringing[update.offer_id] = asyncio.Event()
                    self._spawn(self._ring(service, update))
                elif isinstance(update, OfferWithdrawn) and update.offer_id in self.ringing:
                    self.ringing[update.offer_id].set()
                elif isinstance(update, CallEnded) and update.call_id == self.call_id:
                    self._call_over.set()
        finally:
            beat.cancel()

    async def _heartbeat(self, service: HandoffService) -> None:
        while True:
            with contextlib.suppress(HandoffError, OSError):
                await service.heartbeat(self.agent.agent_id)
            await asyncio.sleep(max(1.0, service.config.heartbeat_ttl_s / 3))

    async def _ring(self, service: HandoffService, offer: Offer) -> None:
        stop = self.ringing[offer.offer_id]
        try:
            call = await self.dialler.dial(self.agent.phone or "", user=self.agent.agent_id,
                                           caller=offer.context.caller_number or None,
                                           ring_timeout_s=max(1.0, offer.expires_at - time.time()), cancelled=stop)
        except DialFailed as exc:
            log.info("agent %s: phone %s (%s)", self.agent.agent_id, exc.outcome, exc)
            if exc.outcome != "cancelled":
                with contextlib.suppress(HandoffError):
                    await service.decline(self.agent.agent_id, offer.offer_id)
            return
        finally:
            self.ringing.pop(offer.offer_id, None)
        try:
            context = await service.accept(self.agent.agent_id, offer.offer_id)
        except HandoffError as exc:  # the desktop or another phone was first
            log.info("agent %s: answered too late (%s)", self.agent.agent_id, exc)
            await self._bye(call)
            return
        with contextlib.suppress(HandoffError, OSError):
            await service.moves.tell_agent(self.agent.agent_id, OnPhone(context.call_id))  # for the desktop
        await self._talk(service, call, context)

    async def _talk(self, service: HandoffService, call: SipCall, context: HandoffContext) -> None:
        found = self.deps()
        assert found is not None and call.codec is not None and call.rtp is not None
        bridge = found[1]
        agent_id, call_id = self.agent.agent_id, context.call_id
        self.call_id, self.phone_call, self.held = call_id, call, False
        self._call_over.clear()
        call.on_media = lambda direction: self._spawn(self._hold(service, bridge, direction != "sendrecv"))
        call.on_refer = lambda target: self._spawn(self._transfer(service, call_id, target))
        try:
            await self._play(call, await self.speak(whisper_text(context)))
            tasks = {asyncio.create_task(self._phone_to_caller(call, bridge)),
                     asyncio.create_task(self._caller_to_phone(call, bridge)),
                     asyncio.create_task(self._call_over.wait())}
            _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            if not self._call_over.is_set():  # the phone hung up (BYE): the agent hangs up the call
                with contextlib.suppress(HandoffError):
                    await service.hang_up(agent_id, call_id)
        finally:
            await self._bye(call)
            self.call_id, self.phone_call = None, None
        await asyncio.sleep(self.wrap_up_s)
        with contextlib.suppress(HandoffError):
            await service.wrap_up(agent_id, call_id, "phone", "taken on the agent's phone")

    async def _transfer(self, service: HandoffService, call_id: str, target: str) -> None:
        """The phone's transfer button (REFER): to another agent or a queue by its name, else out (a number or
        a SIP address), as the desktop's transfer does."""
        user = uri_user(target)
        agents = {a.agent_id for a in service.directory.agents()}
        try:
            if user in agents:
                await service.transfer(self.agent.agent_id, call_id, to_agent=user)
            elif user in service.config.queues:
                await service.transfer(self.agent.agent_id, call_id, queue=user)
            else:
                number = user if NUMBER.match(user) else target
                await service.transfer(self.agent.agent_id, call_id, number=number)
        except (HandoffError, ValueError) as exc:
            log.warning("agent %s: the phone's transfer to %s failed: %s", self.agent.agent_id, target, exc)

    async def _hold(self, service: HandoffService, bridge: AudioBridge, on: bool) -> None:
        if self.call_id is None or on == self.held:
            return
        self.held = on
        with contextlib.suppress(HandoffError):
            await service.hold(self.agent.agent_id, self.call_id, on)
        await bridge.set_hold(self.call_id, on)

    async def _play(self, call: SipCall, pcm8k: bytes) -> None:
        """Speak to the phone in real time (20 ms packets, paced by the clock)."""
        assert call.codec is not None and call.rtp is not None
        loop = asyncio.get_running_loop()
        start = loop.time()
        for n, frame in enumerate(FrameBuffer(FRAME).push(pcm8k)):
            call.codec.send_audio(frame)
            for packet in call.codec.data_to_send():
                await call.rtp.write(packet)
            await asyncio.sleep(max(0.0, start + (n + 1) * 0.02 - loop.time()))

    async def _phone_to_caller(self, call: SipCall, bridge: AudioBridge) -> None:
        """The agent's voice to the caller (dropped while on hold)."""
        async def publish(frame: bytes) -> None:
            if self.call_id is not None and not self.held:
                await bridge.to_caller(self.call_id, frame)
                self.frames_to_caller += 1

        await rtp_to_bridge(call, publish)

    async def _caller_to_phone(self, call: SipCall, bridge: AudioBridge) -> None:
        """The caller's voice to the phone."""
        assert self.call_id is not None
        async with bridge.listen(self.call_id, "agent") as heard:
            await bridge_to_rtp(call, heard)

    @staticmethod
    async def _bye(call: SipCall) -> None:
        await hang_up(call, "agent_call_over")


async def speak_with(tts: Any, text: str) -> bytes:
    """PCM16 at 8 kHz from a TTS engine (`synthesize` yielding AudioChunks); b"" when it cannot speak."""
    pcm = b""
    try:
        async for chunk in tts.synthesize(text):
            pcm += resample_pcm16(chunk.pcm, chunk.sample_rate, RATE)
    except Exception:  # no whisper is better than no call
        log.warning("whisper not spoken: the TTS failed", exc_info=True)
    return pcm


class AgentPhones:
    """The phones of every agent who has one; `on_phone` is the SIP server's registration callback."""

    def __init__(self, agents: Callable[[], list[Agent]], deps: Deps, dialler: SipDialler, speak: Speak, *,
                 wrap_up_s: float = 5.0) -> None:
        self.agents, self.deps, self.dialler, self.speak = agents, deps, dialler, speak
        self.wrap_up_s = wrap_up_s
        self.sessions: dict[str, PhoneSession] = {}
        self._expiry: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Agents with a fixed phone or a number go on duty; registering phones come as they register."""
        for agent in self.agents():
            if agent.phone and agent.phone != "sip":
                self._begin(agent)
        self._expiry = asyncio.create_task(self._expire(), name="phone-registrations")

    def on_phone(self, user: str, present: bool) -> None:
        agent = next((a for a in self.agents() if a.agent_id == user and a.phone == "sip"), None)
        if present and agent is not None and user not in self.sessions:
            self._begin(agent)
        elif not present and user in self.sessions:
            asyncio.get_running_loop().create_task(self.sessions.pop(user).stop())

    def _begin(self, agent: Agent) -> None:
        session = PhoneSession(agent, self.deps, self.dialler, self.speak, wrap_up_s=self.wrap_up_s)
        self.sessions[agent.agent_id] = session
        session.start()
        log.info("agent %s: phone %s on duty", agent.agent_id, agent.phone)

    async def _expire(self) -> None:
        """A phone that stops refreshing its registration is gone."""
        while True:
            await asyncio.sleep(5.0)
            for user in self.dialler.expired_phones():
                self.on_phone(user, False)

    async def close(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        for session in list(self.sessions.values()):
            await session.stop()
        self.sessions.clear()
