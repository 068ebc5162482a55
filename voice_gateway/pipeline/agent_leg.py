"""A call's human leg: queue with hold music, the agent's voice bridged in, the bot silent until it is handed back.

The handoff side is reached only through `HandoffPort` (handoff_port.py). The leg's states are a transition table
(agent_leg_states.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from bot.dialogue import HandoffDecision
from voice_gateway.pipeline.agent_leg_phrases import (
    OverflowOffer,
    overflow_text,
    queue_announcement,
    words,
)
from voice_gateway.pipeline.agent_leg_states import LEG_TRANSITIONS, IllegalLegTransition, Leg
from voice_gateway.pipeline.handoff_port import (
    AgentGone,
    AgentJoined,
    BackToBot,
    HandoffPort,
    Hold,
    InQueue,
    LegHost,
    LegUpdate,
    NoAgent,
    QueueClosed,
    Transcriber,
)
from voice_gateway.pipeline.hold import AgentAudio, HoldMusic, ToBridge, beep_frames

log = logging.getLogger(__name__)
CALLER_BEAT_S = 3.0  # the handoff side ends a call whose caller side is silent for 10 s
STOP_WAIT_S = 1.0  # how long a stopping agent-audio listener is waited for
FOLLOW_AGAIN_S = 0.2  # updates that stopped under a queued or connected call are followed again after this
FOLLOW_TRIES = 5  # ... this many times in a row without an update, then the bot takes the caller back
FOLLOWED = (Leg.QUEUED, Leg.AGENT, Leg.HELD)  # the states that need the handoff side's updates

__all__ = ["LEG_TRANSITIONS", "AgentLeg", "IllegalLegTransition", "Leg"]


class AgentLeg:
    """One call's human leg; the pipeline feeds it caller audio and asks it what to play while the bot is quiet."""

    def __init__(self, call_id: str, line_rate: int, port: HandoffPort, host: LegHost, *, caller: str = "") -> None:
        self.call_id, self.line_rate, self.port, self.host, self.caller = call_id, line_rate, port, host, caller
        self.state = Leg.BOT
        self.agent: AgentJoined | None = None
        self._hold = HoldMusic(line_rate)
        self._agent_audio = AgentAudio(line_rate)
        self._to_bridge = ToBridge(line_rate)
        self._last_position: int | None = None
        self._updates: asyncio.Task[None] | None = None
        self._listening: asyncio.Task[None] | None = None
        self._beating: asyncio.Task[None] | None = None
        self.frames_to_agent = 0
        self.frames_from_agent = 0
        self.voicemail = False  # recording the caller's message (after the tone), streamed to disk by the host
        self.voicemail_bytes = 0
        self._beep: list[bytes] = []
        self._offer: OverflowOffer | None = None  # the overflow choices, while the caller may pick one
        self._overflow_targets: dict[str, str | None] = {}
        self.language = "en"  # the caller's, from the handoff request: what the leg says is said in it
        self._transcript: Transcriber | None = None  # both sides' words while an agent has the caller

    def move(self, event: str) -> Leg:
        try:
            self.state = LEG_TRANSITIONS[(self.state, event)]
        except KeyError:
            raise IllegalLegTransition(f"call {self.call_id}: {event} while {self.state.value}") from None
        return self.state

    @property
    def ended(self) -> bool:
        return self.state is Leg.ENDED

    @property
    def bot_deaf(self) -> bool:
        """The bot neither listens nor answers: somebody else has the caller (or a queue does)."""
        return self.state is not Leg.BOT

    async def request(self, decision: HandoffDecision, *, language: str = "en") -> None:
        """Queue the call for an agent; updates (position, agent, overflow) arrive on a task of their own."""
        self.move("request")
        self.language = language
        self._last_position = None
        try:
            await self.port.caller_here(self.call_id)  # before the queue: a process dying now strands nobody
            await self.port.request(self.call_id, decision, language=language)
        except Exception as exc:  # no queue must never mean silence: the bot keeps the caller
            log.exception("call %s: the handoff request failed", self.call_id)
            await self._back_to_bot(f"request_failed: {type(exc).__name__}", words(language)["no_agent"])
            return
        self.host.log_leg("queued", skill=decision.skill)
        # Subscribing after the request loses nothing: the updates start with where the call stands.
        if self._updates is None or self._updates.done():
            self._updates = asyncio.create_task(self._follow_updates(), name=f"leg-{self.call_id}")
        if self._beating is None or self._beating.done():
            self._beating = asyncio.create_task(self._beat(), name=f"leg-beat-{self.call_id}")

    async def _beat(self) -> None:
        """While the humans' side has the call, say every few seconds that its caller is still here."""
        while self.state is not Leg.BOT and self.state is not Leg.ENDED:
            try:
                await self.port.caller_here(self.call_id)
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis away for a moment: the next beat tries again
                log.debug("call %s: caller beat failed", self.call_id, exc_info=True)
            await asyncio.sleep(CALLER_BEAT_S)

    # Audio.

    async def caller_audio(self, pcm16: bytes) -> None:
        """Caller audio at the line's rate; while an agent is connected it goes to the agent."""
        frames = self._to_bridge.frames(pcm16)
        if self.voicemail and not self._beep:
            self.host.voicemail_audio(pcm16)
            self.voicemail_bytes += len(pcm16)
        if self.state is not Leg.AGENT:
            return
        if self._transcript is not None:
            self._transcript.feed("caller", pcm16)
        for frame in frames:
            await self.port.send_to_agent(self.call_id, frame)
            self.frames_to_agent += 1

    def due(self, now_ms: float) -> list[bytes]:
        """What the caller hears when the bot is quiet: hold music, the agent, or nothing (the bot's turn)."""
        if self.state in (Leg.QUEUED, Leg.HELD, Leg.OFFERING):
            return [self._hold.frame()]
        if self.state is Leg.AGENT:
            return self._agent_audio.due(now_ms)
        if self._beep:
            return [self._beep.pop(0)]
        return []

    # Updates from the handoff side.

    async def _follow_updates(self) -> None:
        """The handoff side's updates, carried out in order. Updates that stop while the call is still queued or
        with an agent are followed again (a guard; the feed's one known early end is mended in `CallerFeed`):
        they start with where the call stands, so an agent's hang-up is never lost; after FOLLOW_TRIES empty
        tries the bot takes the caller back rather than leave them on hold in silence."""
        tries = 0
        while True:
            how = "ended"
            try:
                async for update in self.port.updates(self.call_id):
                    tries = 0
                    await self.on_update(update)
                    if self.state is Leg.ENDED:
                        return
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if self.state is Leg.ENDED or (task is not None and task.cancelling()):
                    raise  # the call is closing (close() cancels us)
                how = "was cancelled"
            except Exception:
                log.exception("call %s: handoff updates failed; the bot takes the call back", self.call_id)
                if self.state in FOLLOWED:
                    await self._back_to_bot("handoff_failed", words(self.language)["no_agent"])
                return
            if self.state not in FOLLOWED:
                return
            tries += 1
            log.warning("call %s: the handoff updates %s while %s; following them again (%d)", self.call_id, how,
                        self.state.value, tries)
            if tries > FOLLOW_TRIES:
                await self._back_to_bot("handoff_lost", words(self.language)["no_agent"])
                return
            await asyncio.sleep(FOLLOW_AGAIN_S)

    async def on_update(self, update: LegUpdate | Hold) -> None:
        """Carry out one update; a stale one (for a state the call already left) is logged and ignored."""
        if self.state is Leg.ENDED:
            return
        match update:
            case InQueue() if self.state is not Leg.QUEUED:  # sent from a router's view a moment behind
                log.info("call %s: a queue position while %s, ignored", self.call_id, self.state.value)
            case InQueue(position=position, expected_wait_s=wait):
                self.move("position")
                if position != self._last_position:
                    self._last_position = position
                    self.host.say(queue_announcement(position, wait, self.language))
                    await self.host.show("queued", f"position {position}")
            case AgentJoined() if self.state is Leg.AGENT and self.agent is not None \
                    and self.agent.agent_id == update.agent_id:
                log.info("call %s: told twice that %s joined", self.call_id, update.agent_id)
            case AgentJoined():
                self.move("agent_joined")
                self.agent = update
                await self.host.silence_bot()
                self._agent_audio.clear()
                self._listening = asyncio.create_task(self._listen_to_agent(), name=f"agent-{self.call_id}")
                self.host.log_leg("agent_joined", agent_id=update.agent_id, agent=update.name)
                if self._transcript is None:
                    self._transcript = self.host.transcriber(self._said)
                await self.host.show("agent", update.name)
            case AgentGone(reason=reason, requeued=requeued, target=target):
                await self._agent_gone(reason, requeued, target)
            case Hold(on=on):
                if self.state in (Leg.AGENT, Leg.HELD) and (self.state is Leg.AGENT) == on:
                    self.move("hold" if on else "unhold")
                    self.host.log_leg("hold" if on else "unhold")
                    await self.host.show("on hold" if on else "agent", self.agent.name if self.agent else "")
            case NoAgent(choices=offered) if self._offerable(update, offered):
                choices = self._offerable(update, offered)
                self.move("overflow_offer")
                self._offer = OverflowOffer(choices, update.action, update.choice_timeout_s)
                self._overflow_targets = {"callback": update.target if update.action == "callback" else None,
                                          "transfer": update.backup}
                self.host.log_leg("overflow_offer", choices=list(choices), default=update.action)
                self.host.say(self._offer.text(self.language))
                await self.host.show("overflow", "choose: " + ", ".join(choices))
            case NoAgent(action=action, target=target):
                self.move("overflow")
                await self._overflow(action, target)
            case QueueClosed():
                await self._back_to_bot("closed", words(self.language)["closed"], event="closed")
            case BackToBot(reason=reason) if self.state is not Leg.BOT:  # (after AgentGone it is back already)
                await self._back_to_bot(reason, words(self.language)["no_agent"])

    async def _agent_gone(self, reason: str, requeued: bool, target: str | None = None) -> None:
        if self.state not in (Leg.AGENT, Leg.HELD):
            log.info("call %s: agent left (%s) while %s", self.call_id, reason, self.state.value)
            return
        await self._stop_listening()
        if self.ended:  # the caller hung up meanwhile: nothing left to move
            return
        self.host.log_leg("agent_left", reason=reason, requeued=requeued)
        if reason == "hangup":
            self.move("agent_hung_up")
            await self.host.hang_up("agent_hangup")
        elif reason == "transfer_out" and target:  # the agent sent the caller on: say so, then the transport does it
            self.move("agent_hung_up")
            self.host.say(overflow_text("transfer", target, first=False, language=self.language), transfer_to=target)
        elif requeued:
            self.move("requeued")
            self._last_position = None
            await self.host.show("queued", reason)
        else:
            await self._back_to_bot(reason, words(self.language)["hand_back"])

    async def _back_to_bot(self, reason: str, text: str, *, event: str = "back_to_bot") -> None:
        await self._stop_listening()
        self.move(event)
        self.host.log_leg("back_to_bot", reason=reason)
        await self.host.resume_bot(text)

    async def _overflow(self, action: str, target: str | None, *, chosen_by: str = "") -> None:
        """Carry the overflow action out: a callback (put on the list), the voicemail tone, or a transfer."""
        self.host.log_leg("overflow", action=action, target=target, chosen_by=chosen_by or None)
        first = self._offer is None  # after an offer the caller already knows everyone is busy
        if action == "callback":
            try:
                target = await self.port.request_callback(self.call_id)
            except Exception:
                log.exception("call %s: the callback could not be recorded; taking a message instead", self.call_id)
                action = "voicemail"
            else:
                self.host.log_leg("callback_requested", number=target)
        text = overflow_text(action, target, caller=self.caller, first=first, language=self.language)
        if action == "voicemail":
            self.host.say(text)
            self.voicemail = True
            self._beep = beep_frames(self.line_rate)
        elif action == "transfer" and target:
            self.host.say(text, transfer_to=target)  # the backup number: the transport sends the caller on
        else:
            self.host.say(text, then_hang_up="overflow_" + action)
        await self.host.show("overflow", action)

    def _offerable(self, update: NoAgent, offered: tuple[str, ...]) -> tuple[str, ...]:
        """The choices worth offering: no callback without a number to call (none left: the default at once)."""
        return tuple(c for c in offered if c != "callback" or update.target or self.caller)

    async def _choose(self, action: str, chosen_by: str) -> None:
        self.move("choose")
        await self.host.silence_bot()  # a key cuts the offer short
        await self._overflow(action, self._overflow_targets.get(action), chosen_by=chosen_by)

    async def caller_key(self, digit: str) -> None:
        """A key while the bot does not listen: picks an overflow choice, or goes to the agent's desktop."""
        if self.state is Leg.OFFERING and self._offer is not None:
            action = self._offer.key(digit)
            if action is not None:
                await self._choose(action, f"key {digit}")
        elif self.state in (Leg.AGENT, Leg.HELD):
            try:
                await self.port.key_to_agent(self.call_id, digit)
            except Exception:
                log.exception("call %s: key %s did not reach the agent", self.call_id, digit)

    async def quiet(self, now_ms: float) -> None:
        """The bot has nothing to say at `now_ms` (call clock): an unanswered overflow offer runs out."""
        if self.state is Leg.OFFERING and self._offer is not None:
            action = self._offer.quiet(now_ms)
            if action is not None:
                await self._choose(action, "no key")

    async def _listen_to_agent(self) -> None:
        try:
            async for item in self.port.from_agent(self.call_id):
                if isinstance(item, Hold):
                    await self.on_update(item)
                elif self.state is Leg.AGENT:
                    self._agent_audio.push(item)
                    self.frames_from_agent += 1
                    if self._transcript is not None:
                        self._transcript.feed("agent", item)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("call %s: the agent's audio stopped", self.call_id)

    async def _said(self, speaker: str, text: str) -> None:
        """A transcribed line of the agent leg: into the call log and onto the agent's desktop."""
        self.host.log_said(speaker, text)
        try:
            await self.port.transcript_line(self.call_id, speaker, text)
        except Exception:
            log.exception("call %s: a transcript line did not reach the agent", self.call_id)

    async def _stop_listening(self) -> None:
        """Stop the agent's audio (and its transcript); waits a moment for the listener, never for its cleanup:
        an unsubscribe stalled on a busy Redis must not keep an agent's hang-up from ending the call."""
        task, self._listening = self._listening, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=STOP_WAIT_S)
            if not done:
                log.warning("call %s: the agent's audio listener is slow to stop; going on without it", self.call_id)
                task.add_done_callback(lambda t: t.cancelled() or t.exception())  # (retrieved: nothing to report)
        transcript, self._transcript = self._transcript, None
        if transcript is not None:
            await transcript.close()

    async def close(self, *, caller_hung_up: bool) -> None:
        """The call ended: stop both tasks and tell the handoff side if the caller left while it had the call."""
        involved = self.state in (Leg.QUEUED, Leg.AGENT, Leg.HELD)
        self.state = Leg.ENDED
        if self.voicemail_bytes:
            self.host.save_voicemail()
        await self._stop_listening()
        if self._beating is not None:
            self._beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beating
        if self._updates is not None and self._updates is not asyncio.current_task():
            self._updates.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._updates
        if caller_hung_up and involved:
            try:
                await self.port.caller_hung_up(self.call_id)
            except Exception:
                log.exception("call %s: could not tell the handoff service the caller hung up", self.call_id)
