"""A started call's parts, built together when its start message arrives: the pipeline holds either no call or
a whole one (listener, resampler, key detector, bot voice, call log, recording, agent leg), never half of one."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from voice_gateway.asr import TurnListener
from voice_gateway.audio import StreamResampler
from voice_gateway.events import CallStarted
from voice_gateway.pipeline.agent_leg import AgentLeg
from voice_gateway.pipeline.agent_leg_host import AgentLegHost
from voice_gateway.pipeline.bot_voice import BotVoice
from voice_gateway.pipeline.call_log_entries import CallLogEntries
from voice_gateway.pipeline.dtmf_detect import DtmfDetector
from voice_gateway.pipeline.services import VoiceServices
from voice_gateway.pipeline.state import CallState, Signal
from voice_gateway.recording import CallRecorder, RecordingFile
from voice_gateway.transports import CallConnection
from voice_gateway.vad import VoiceActivityDetector

log = logging.getLogger(__name__)


@dataclass(eq=False)
class CallRecording:
    """Both tracks in memory (the last second or so) and the file they are spooled to; kept or given up
    together."""

    recorder: CallRecorder
    file: RecordingFile


@dataclass(eq=False)
class ActiveCall:
    """One started call. `recording` is None when calls are not recorded (or its disk failed); `leg` when the app
    has no handoff service; `keys` when in-band DTMF detection is off."""

    state: CallState
    listener: TurnListener
    to_asr: StreamResampler
    keys: DtmfDetector | None
    records: CallLogEntries
    voice: BotVoice
    recording: CallRecording | None
    leg: AgentLeg | None = None  # the human side
    ivr_path: tuple[str, ...] = ()  # the menus the caller went through (for the call record)
    language: str | None = None  # of the caller's latest words
    asr_down: bool = False  # the ASR failed on this call; the caller is on the keypad until it works again

    # What the agent leg's host asks of the bot's side (`agent_leg_host.BotSide`).

    def say(self, text: str) -> None:
        """Queue a text for the bot to speak (after anything it is saying)."""
        self.state.move(Signal.SPEAK)
        self.voice.queue(text)

    def stop_listening(self) -> None:
        self.listener.stop_listening()

    async def drop_speech(self) -> None:
        """Cut the bot off: queued texts, synthesis in progress, and audio not played yet."""
        await self.voice.cut_off(lambda: self.records.bot_utterances(interrupted=True))

    def bot_busy(self) -> bool:
        """The bot is talking: audio is queued, being synthesised, or not yet confirmed played."""
        return self.voice.busy()

    @property
    def bot_deaf(self) -> bool:
        """Queued or with an agent: the bot does not listen, keys go to the agent leg."""
        return self.leg is not None and self.leg.bot_deaf

    def stop_recording(self) -> None:
        """The recording's disk failed: the call goes on unrecorded."""
        if self.recording is not None:
            self.recording.file.abandon()
        self.recording = None
        self.voice.recorder = None


def start_call(event: CallStarted, services: VoiceServices, line: CallConnection) -> ActiveCall:
    """Build every part of the call `event` starts (the call id is already claimed)."""
    settings = services.settings
    rate = event.sample_rate
    asr_rate = 8000 if rate == 8000 else 16000
    state = CallState(event.call_id, event.transport, rate, caller=event.caller)
    detector = VoiceActivityDetector.create(services.vad, asr_rate, settings.endpoint)
    records = CallLogEntries(state, services.call_log, settings.recordings_dir)
    recording = None
    if settings.record_calls:
        try:  # streamed to disk as the call goes on (RAM holds only the last second or so)
            recording = CallRecording(CallRecorder(rate), RecordingFile(records.recording_path(), rate))
        except (OSError, ValueError):
            log.exception("call %s: cannot record (the call goes on unrecorded)", event.call_id)
            services.observer.on_error(event.call_id, "recording")
    voice = BotVoice(state, services, line, recording.recorder if recording is not None else None)
    listener = TurnListener(detector, services.asr.stream(asr_rate), services.hold_turn)
    call = ActiveCall(state, listener, StreamResampler(rate, asr_rate),
                      DtmfDetector(rate) if settings.inband_dtmf else None, records, voice, recording)
    if services.handoff is not None:
        call.leg = AgentLeg(event.call_id, rate, services.handoff, AgentLegHost(call, state, records, services, line),
                            caller=event.caller)
    voice.start()
    return call
