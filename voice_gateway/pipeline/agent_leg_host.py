"""The agent leg's host: what the human side may ask of its call (speak, fall silent, resume, hang up,
show a status, log, keep a voicemail), carried out on the `CallPipeline`. Implements `LegHost`."""

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


class HostCall(Protocol):
    """What the leg's host uses of its call (`CallPipeline`; a protocol, so the two modules import one way)."""

    line: CallConnection
    services: VoiceServices
    state: CallState | None
    records: CallLogEntries | None

    def say(self, text: str) -> None: ...

    def stop_listening(self) -> None: ...

    async def drop_speech(self) -> None: ...


class AgentLegHost:
    """`LegHost` for one call's pipeline."""

    def __init__(self, pipeline: HostCall) -> None:
        self._call = pipeline

    def say(self, text: str, *, then_hang_up: str | None = None, transfer_to: str | None = None) -> None:
        """Speak `text`; then hang up (`then_hang_up`), or send the caller on to `transfer_to`."""
        state = self._call.state
        if state is None or state.phase is Phase.ENDED:
            return
        self._call.say(text)
        state.hangup_pending = state.hangup_pending or then_hang_up is not None or transfer_to is not None
        state.transfer_to = transfer_to or state.transfer_to

    async def silence_bot(self) -> None:
        """An agent takes over (or the caller chose by key): the bot stops mid-sentence and stops listening."""
        state = self._call.state
        assert state is not None
        self._call.stop_listening()
        await self._call.drop_speech()
        if state.phase is Phase.SPEAKING:
            state.move(Signal.BARGE_IN)

    async def resume_bot(self, text: str) -> None:
        """The bot has the caller again: its conversation leaves handoff mode; it speaks, then listens."""
        state = self._call.state
        assert state is not None
        resume = self._call.services.resume_bot
        if resume is not None:
            await self._call.services.run(lambda: resume(state.call_id))
        self.say(text)

    async def hang_up(self, reason: str) -> None:
        await self._call.line.hang_up(reason)

    async def show(self, status: str, detail: str = "") -> None:
        await self._call.line.send(DisplayStatus(status, detail))

    def log_leg(self, stage: str, **data: object) -> None:
        assert self._call.records is not None
        self._call.records.log(LifecycleKind.HANDOFF, stage=stage, **data)

    def log_said(self, speaker: str, text: str) -> None:
        assert self._call.records is not None
        self._call.records.log(LifecycleKind.TURN, speaker=speaker, text=text, leg="agent")

    def transcriber(self, emit: LineSink) -> Transcriber | None:
        state, services = self._call.state, self._call.services
        if state is None or not services.settings.agent_transcript:
            return None
        return LegTranscript(services, state.call_id, state.sample_rate, emit)

    def voicemail_audio(self, pcm16: bytes) -> None:
        assert self._call.records is not None
        self._call.records.voicemail_audio(pcm16)

    def save_voicemail(self) -> None:
        assert self._call.records is not None
        self._call.records.save_voicemail()
