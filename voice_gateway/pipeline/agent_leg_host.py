"""The agent leg's host: what the human side may ask of its call (speak, fall silent, resume, hang up,
show a status, log, keep a voicemail), carried out on its started call. Implements `LegHost`."""

from __future__ import annotations

from typing import Protocol

from voice_gateway.call_log import LifecycleKind
from voice_gateway.events import DisplayStatus
from voice_gateway.pipeline.agent_leg_transcript import LegTranscript
from voice_gateway.pipeline.call_log_entries import CallLogEntries
from voice_gateway.pipeline.handoff_port import LineSink, Transcriber
from voice_gateway.pipeline.services import VoiceServices
from voice_gateway.pipeline.state import CallState, Phase, Signal
from voice_gateway.transports import CallConnection


class BotSide(Protocol):
    """The bot's side of the call (`active_call.ActiveCall`; a protocol, so the two modules import one way)."""

    def say(self, text: str) -> None: ...

    def stop_listening(self) -> None: ...

    async def drop_speech(self) -> None: ...


class AgentLegHost:
    """`LegHost` for one started call."""

    def __init__(self, bot: BotSide, state: CallState, records: CallLogEntries, services: VoiceServices,
                 line: CallConnection) -> None:
        self._bot, self._state, self._records, self._services, self._line = bot, state, records, services, line

    def say(self, text: str, *, then_hang_up: str | None = None, transfer_to: str | None = None) -> None:
        """Speak `text`; then hang up (`then_hang_up`), or send the caller on to `transfer_to`."""
        state = self._state
        if state.phase is Phase.ENDED:
            return
        self._bot.say(text)
        state.hangup_pending = state.hangup_pending or then_hang_up is not None or transfer_to is not None
        state.transfer_to = transfer_to or state.transfer_to

    async def silence_bot(self) -> None:
        """An agent takes over (or the caller chose by key): the bot stops mid-sentence and stops listening."""
        state = self._state
        self._bot.stop_listening()
        await self._bot.drop_speech()
        if state.phase is Phase.SPEAKING:
            state.move(Signal.BARGE_IN)

    async def resume_bot(self, text: str) -> None:
        """The bot has the caller again: its conversation leaves handoff mode; it speaks, then listens."""
        call_id, services = self._state.call_id, self._services
        resume = services.resume_bot
        if resume is not None:
            await services.run(lambda: resume(call_id))
        self.say(text)

    async def hang_up(self, reason: str) -> None:
        await self._line.hang_up(reason)

    async def show(self, status: str, detail: str = "") -> None:
        await self._line.send(DisplayStatus(status, detail))

    def log_leg(self, stage: str, **data: object) -> None:
        self._records.log(LifecycleKind.HANDOFF, stage=stage, **data)

    def log_said(self, speaker: str, text: str) -> None:
        self._records.log(LifecycleKind.TURN, speaker=speaker, text=text, leg="agent")

    def transcriber(self, emit: LineSink) -> Transcriber | None:
        state, services = self._state, self._services
        if not services.settings.agent_transcript:
            return None
        return LegTranscript(services, state.call_id, state.sample_rate, emit)

    def voicemail_audio(self, pcm16: bytes) -> None:
        self._records.voicemail_audio(pcm16)

    def save_voicemail(self) -> None:
        self._records.save_voicemail()
