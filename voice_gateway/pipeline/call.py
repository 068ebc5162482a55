"""One call end to end: caller audio -> VAD + ASR -> dialogue -> TTS -> transport, with barge-in and DTMF.

The bot's speaking side is `bot_voice.BotVoice`, the call log entries are `call_log_entries.CallLogEntries`, the
human side is `agent_leg.AgentLeg` (reached through `agent_leg_host.AgentLegHost`); this module takes turns.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from bot.dialogue import BotTurn
from voice_gateway.asr import AsrFinal, AsrPartial, ListenerEvent, TurnListener
from voice_gateway.audio import StreamResampler
from voice_gateway.call_log import LifecycleKind
from voice_gateway.events import (
    AudioIn,
    CallEnded,
    CallStarted,
    DisplayStatus,
    DisplayTranscript,
    Dtmf,
    InboundEvent,
    MarkPlayed,
    Transfer,
    TransportError,
)
from voice_gateway.pipeline.agent_leg import AgentLeg
from voice_gateway.pipeline.agent_leg_host import AgentLegHost
from voice_gateway.pipeline.bot_voice import BotVoice
from voice_gateway.pipeline.call_log_entries import CallLogEntries
from voice_gateway.pipeline.dtmf_detect import DtmfDetector
from voice_gateway.pipeline.services import ANNOUNCEMENTS, DEFAULT_ANNOUNCEMENT, VoiceServices
from voice_gateway.pipeline.state import CallState, Phase, Signal, TranscriptLine
from voice_gateway.recording import CallRecorder, RecordingFile
from voice_gateway.transports import CallConnection
from voice_gateway.tts import language_of
from voice_gateway.vad import NoInput, SpeechLikely, SpeechStarted, VoiceActivityDetector

log = logging.getLogger(__name__)
RECORDING_SPOOL_BYTES = 64_000  # both tracks together: about 2 s at 8 kHz


class CallPipeline:
    """Implements the transports' `CallHandler` for one call; build one per connection with `services`."""

    def __init__(self, line: CallConnection, services: VoiceServices) -> None:
        self.line = line
        self.services = services
        self.state: CallState | None = None
        self._listener: TurnListener | None = None
        self._asr_down = False  # the ASR failed on this call; the caller is on the keypad until it works again
        self.recording_file: RecordingFile | None = None
        self._to_asr: StreamResampler | None = None
        self._keys: DtmfDetector | None = None
        self.voice: BotVoice | None = None
        self.records: CallLogEntries | None = None
        self.recorder: CallRecorder | None = None
        self.leg: AgentLeg | None = None  # the human side, when the app has a handoff service
        self.ivr_path: tuple[str, ...] = ()  # the menus the caller went through (for the call record)
        self.language: str | None = None  # of the caller's latest words

    # The CallHandler protocol.

    async def on_event(self, event: InboundEvent) -> None:
        match event:
            case CallStarted():
                await self._on_start(event)
            case AudioIn():
                await self._on_audio(event)
            case Dtmf(digit=digit):
                await self._on_key(digit, "transport")
            case MarkPlayed(name=name) if self.voice is not None:
                self.voice.mark_played(name)
            case CallEnded(reason=reason):
                await self._on_end(reason)
            case TransportError():
                self.services.observer.on_error(self.state.call_id if self.state else "", "transport")
                log.info("call %s: %s", self.state.call_id if self.state else "?", event)

    # Call lifecycle.

    async def _on_start(self, event: CallStarted) -> None:
        settings = self.services.settings
        if not self.services.claim_call_id(event.call_id):
            log.warning("call %s refused: this call id was used already", event.call_id)
            self.services.observer.on_call_rejected(event.transport, "duplicate_call_id")
            await self.line.hang_up("duplicate_call_id")
            return
        rate = event.sample_rate
        asr_rate = 8000 if rate == 8000 else 16000
        self.state = state = CallState(event.call_id, event.transport, rate, caller=event.caller)
        detector = VoiceActivityDetector.create(self.services.vad, asr_rate, settings.endpoint)
        self._listener = TurnListener(detector, self.services.asr.stream(asr_rate))
        self._to_asr = StreamResampler(rate, asr_rate)
        self._keys = DtmfDetector(rate) if settings.inband_dtmf else None
        self.recorder = CallRecorder(rate) if settings.record_calls else None
        self.records = CallLogEntries(state, self.services.call_log, settings.recordings_dir)
        if self.recorder is not None:
            try:  # streamed to disk as the call goes on (RAM holds only the last second or so)
                self.recording_file = RecordingFile(self.records.recording_path(), rate)
            except (OSError, ValueError):
                log.exception("call %s: cannot record (the call goes on unrecorded)", event.call_id)
                self.services.observer.on_error(event.call_id, "recording")
                self.recorder = None
        self.voice = BotVoice(state, self.services, self.line, self.recorder)
        self.voice.start()
        if self.services.handoff is not None:
            self.leg = AgentLeg(event.call_id, rate, self.services.handoff, AgentLegHost(self), caller=event.caller)
        # The dialled number's line (one callpilot, several numbers): its name goes in the log, its language greets
        line = self.services.line_for(event.called) if self.services.line_for is not None and event.called else None
        self._log(LifecycleKind.STARTED, transport=event.transport, caller=event.caller, sample_rate=rate,
                  **({"called": line.number, "line": line.name} if line is not None else {}))
        self.services.observer.on_call_started(event.call_id, event.transport, event.caller)
        await self.line.send(DisplayStatus("connected"))
        if settings.record_calls:
            spoken = ANNOUNCEMENTS.get(line.language or "") if line is not None else None
            self.say(settings.announcement or spoken or DEFAULT_ANNOUNCEMENT)
        caller = event.caller or None
        language = line.language if line is not None else None
        turn = await self.services.run(
            lambda: self.services.dialogue.start(event.call_id, caller, settings.channel, language))
        if event.parameters.get("callback_for") and self.services.opening is not None:
            try:
                turn = await self.services.opening(event.call_id, dict(event.parameters), turn)
            except Exception:  # the caller is on the line: the usual greeting rather than silence
                log.exception("call %s: the callback's opening failed", event.call_id)
        await self._apply(turn)

    async def _on_end(self, reason: str) -> None:
        state, voice, records = self.state, self.voice, self.records
        if state is None or voice is None or records is None or state.phase is Phase.ENDED:
            return
        state.move(Signal.END)
        if self.leg is not None:
            await self.leg.close(caller_hung_up=True)
        await voice.stop()
        records.bot_utterances(interrupted=False)
        recording = await self._finish_recording()
        self._log(
            LifecycleKind.ENDED,
            reason=reason,
            recording=recording,
            language=self.language,
            ivr_path=list(self.ivr_path),
            barge_ins=state.barge_ins,
            barge_in_onsets_ms=state.barge_in_onsets_ms,
            turn_gaps_ms=state.turn_gaps_ms,
        )
        self.services.observer.on_call_ended(state.call_id, reason)

    # Recording.

    def _spool_recording(self) -> None:
        """Move the settled part of the recording from memory to its file (about once a second)."""
        recorder, file = self.recorder, self.recording_file
        if recorder is None or file is None or recorder.held_bytes < RECORDING_SPOOL_BYTES:
            return
        try:
            file.write(recorder.drain())
        except OSError:  # disk full: the call goes on, the recording is given up
            log.exception("call %s: writing the recording failed; the call goes on unrecorded",
                          self.state.call_id if self.state else "?")
            self.services.observer.on_error(self.state.call_id if self.state else "", "recording")
            file.abandon()
            self.recorder = self.recording_file = None
            if self.voice is not None:
                self.voice.recorder = None

    async def _finish_recording(self) -> str | None:
        recorder, file = self.recorder, self.recording_file
        if recorder is None or file is None:
            return None

        def finish() -> str:
            file.write(recorder.drain(everything=True))
            return str(file.finish())

        try:
            return await self.services.run(finish)
        except OSError:
            log.exception("call %s: saving the recording failed", self.state.call_id if self.state else "?")
            file.abandon()
            return None

    # Caller audio.

    async def _on_audio(self, event: AudioIn) -> None:
        state, listener, to_asr = self.state, self._listener, self._to_asr
        if state is None or listener is None or to_asr is None or state.phase is Phase.ENDED:
            return
        state.clock_ms += event.duration_ms
        if self.recorder is not None:
            self.recorder.add_caller(event.pcm)
            self._spool_recording()
        if self._keys is not None:  # also while queued or with an agent: keys then go to the agent leg
            for digit in self._keys.accept(event.pcm):
                await self._on_key(digit, "inband")
        if self.leg is not None and self.leg.bot_deaf:  # queued or with an agent: the bot does not listen
            await self.leg.caller_audio(event.pcm)
            await self._pump()
            return
        pcm = to_asr.process(event.pcm)
        began = time.perf_counter()
        # Only audio that may end a pause or a turn can decode; the rest (VAD) costs less than a thread hop.
        try:
            if listener.may_decode(pcm):
                results = await self.services.decode(lambda: listener.accept(pcm))
            else:
                results = listener.accept(pcm)
        except Exception:  # the ASR failed (a crashed worker, a model that would not load): keys, not silence
            await self._asr_failed()
            return
        if self._asr_down:
            self._asr_down = False
            log.info("call %s: speech recognition works again", state.call_id)
        if any(isinstance(heard, AsrFinal) for heard in results):
            self.services.observer.on_asr_final(state.call_id, (time.perf_counter() - began) * 1000)
        for heard in results:
            await self._on_listener(heard)
        await self._pump()

    async def _asr_failed(self) -> None:
        """Speech recognition failed on this call: say so and continue in the keypad menu (once); the next
        audio tries the ASR again, and a confident spoken request leaves the menu when it works again."""
        state = self.state
        assert state is not None
        self.services.observer.on_error(state.call_id, "asr")
        if self._asr_down:
            return
        self._asr_down = True
        log.exception("call %s: speech recognition failed; the caller goes to the keypad menu", state.call_id)
        if self._listener is not None:
            self._listener.reset()
        await self._caller_turn(lambda: self.services.dialogue.speech_unavailable(state.call_id))

    async def _on_listener(self, event: ListenerEvent) -> None:
        state = self.state
        assert state is not None
        if isinstance(event, SpeechLikely | SpeechStarted):  # confident speech stops the bot before the turn
            if self.bot_busy() and self.services.settings.barge_in:
                state.barge_in_onsets_ms.append(event.start_ms)
                await self._barge_in()
                if isinstance(event, SpeechLikely):
                    self._rearm()  # if no turn follows (the onset is lost), the no-input timer reprompts
        elif isinstance(event, AsrPartial):
            await self.line.send(DisplayTranscript("caller", event.text, final=False))
        elif isinstance(event, AsrFinal):
            if state.masked_by_key(event.start_ms, event.end_ms) or not event.text.strip():
                self._rearm()
                return
            state.caller_turn_end_ms = float(event.end_ms)
            state.transcript.append(TranscriptLine("caller", event.text, event.end_ms))
            await self.line.send(DisplayTranscript("caller", event.text))
            self.language = language_of(event.text)
            heard = {"speaker": "caller", "text": event.text, "confidence": round(event.confidence, 3),
                     "language": self.language}
            await self._caller_turn(lambda: self.services.dialogue.handle_text(state.call_id, event.text), heard)
        elif isinstance(event, NoInput) and not self.bot_busy():
            await self._caller_turn(lambda: self.services.dialogue.handle_no_input(state.call_id))

    # Keys.

    async def _on_key(self, digit: str, source: str) -> None:
        state = self.state
        if state is None or state.phase is Phase.ENDED or not state.press_key(digit):
            return
        if self.leg is not None and self.leg.bot_deaf:  # an overflow choice, or a key for the agent
            self._log(LifecycleKind.DTMF, digit=digit, source=source, leg=self.leg.state.value)
            await self.leg.caller_key(digit)
            return
        state.transcript.append(TranscriptLine("caller", "", int(state.clock_ms), dtmf=digit))
        self._log(LifecycleKind.DTMF, digit=digit, source=source)
        if self.bot_busy():
            await self._barge_in()
        await self._caller_turn(lambda: self.services.dialogue.handle_dtmf(state.call_id, digit))

    # The bot's side.

    async def _caller_turn(self, work: Callable[[], BotTurn], heard: dict[str, object] | None = None) -> None:
        """Run one dialogue step off the loop and carry out its answer; `heard` is logged with its intent."""
        state = self.state
        assert state is not None
        state.move(Signal.CALLER_TURN)
        if self._listener is not None:
            self._listener.stop_listening()
        turn = await self.services.run(work)
        if heard is not None:  # with what the NLU understood: the records' intents (hot topics)
            self._log(LifecycleKind.TURN, **heard, intent=turn.debug.intent, intent_confidence=turn.debug.confidence)
        await self._apply(turn)

    async def _apply(self, turn: BotTurn) -> None:
        """Say the turn's messages; log a handoff (the handoff service routes it); hang up after playback."""
        state = self.state
        assert state is not None
        spoken_in = self.language or turn.language  # the caller's words', else the conversation's (keys only)
        if turn.handoff is not None:
            state.handoffs += 1
            handoff = turn.handoff
            self._log(LifecycleKind.HANDOFF, reason=handoff.reason, skill=handoff.skill, priority=handoff.priority,
                      caller_number=handoff.caller_number, intents=list(handoff.intents),
                      ivr_path=list(handoff.ivr_path), summary=handoff.summary, language=self.language)
            self.services.observer.on_handoff(state.call_id, handoff.skill, handoff.reason)
            await self.line.send(DisplayStatus("handoff", handoff.skill))
            if self.leg is not None and not self.leg.bot_deaf:
                await self.leg.request(handoff, language=spoken_in or "en")
        self.ivr_path = turn.debug.ivr_path or self.ivr_path
        state.ivr_timeout_ms = int(turn.ivr_timeout * 1000) if turn.ivr_active and turn.ivr_timeout else None
        state.expects_yes_no = turn.expects_yes_no
        state.hangup_pending = state.hangup_pending or turn.hangup
        for message in turn.messages:
            self.say(message)
        if not turn.messages:
            state.move(Signal.SPEAK if self.bot_busy() else Signal.PLAYED)
            if state.phase is Phase.LISTENING:
                self._rearm()

    def say(self, text: str) -> None:
        """Queue a text for the bot to speak (after anything it is saying)."""
        state, voice = self.state, self.voice
        assert state is not None and voice is not None
        state.move(Signal.SPEAK)
        voice.queue(text)

    def bot_busy(self) -> bool:
        """The bot is talking: audio is queued, being synthesised, or not yet confirmed played."""
        return self.voice is not None and self.voice.busy()

    async def _pump(self) -> None:
        """Send what is due by the caller clock: the bot, else the leg (hold music, the agent); notice when
        playback is over."""
        state, voice = self.state, self.voice
        assert state is not None and voice is not None
        answered = state.answered_ms is not None
        await voice.send_due()
        if not answered and state.answered_ms is not None:
            self._log(LifecycleKind.ANSWERED, by="bot")
        if self.leg is not None and not self.bot_busy():
            await self.leg.quiet(state.clock_ms)  # an unanswered overflow offer may run out (and speak) here
            if not self.bot_busy():
                await voice.send_other(self.leg.due(state.clock_ms))  # hold music or the agent (right channel)
        if state.phase is Phase.SPEAKING and not self.bot_busy():
            state.move(Signal.PLAYED)
            self._log_bot_utterances(interrupted=False)
            if state.hangup_pending:
                await self._leave()
                return
            self._rearm()

    async def _barge_in(self) -> None:
        """Stop playback now, drop queued speech (never control events), and listen."""
        state = self.state
        assert state is not None
        state.barge_ins += 1
        state.expects_yes_no = False  # the caller cut in before the yes/no question was over: not an answer to it
        await self.drop_speech()
        if state.phase is Phase.SPEAKING:
            state.move(Signal.BARGE_IN)
        await self.line.send(DisplayStatus("listening", "barge-in"))
        if state.hangup_pending:
            await self._leave()

    async def _leave(self) -> None:
        """The bot has said its last words: hang up, or hand the caller on (a transfer)."""
        assert self.state is not None
        if self.state.transfer_to:
            self._log(LifecycleKind.HANDOFF, stage="transfer_out", target=self.state.transfer_to)
            await self.line.send(Transfer(self.state.transfer_to))
        else:
            await self.line.hang_up("bot_hangup")

    async def drop_speech(self) -> None:
        """Cut the bot off: queued texts, synthesis in progress, and audio not played yet."""
        assert self.voice is not None
        await self.voice.cut_off(lambda: self._log_bot_utterances(interrupted=True))

    def stop_listening(self) -> None:
        if self._listener is not None:
            self._listener.stop_listening()

    def _rearm(self) -> None:
        """Listen for the caller's next turn: the IVR's key timeout when a menu is active, a shorter end of turn
        after a yes/no question."""
        if self.leg is not None and self.leg.bot_deaf:
            return
        if self._listener is not None and self.state is not None and self.state.phase is not Phase.ENDED:
            self._listener.listen(yes_no=self.state.expects_yes_no, no_input_timeout_ms=self.state.ivr_timeout_ms)

    # Records.

    def _log_bot_utterances(self, *, interrupted: bool) -> None:
        assert self.records is not None
        self.records.bot_utterances(interrupted=interrupted)

    def _log(self, kind: LifecycleKind, **data: object) -> None:
        assert self.records is not None
        self.records.log(kind, **data)
