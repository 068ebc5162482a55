"""One call end to end: caller audio -> VAD + ASR -> dialogue -> TTS -> transport, with barge-in and DTMF.

A started call's parts are one `active_call.ActiveCall`; the bot's speaking side is `bot_voice.BotVoice`, the call
log entries are `call_log_entries.CallLogEntries`, the human side is `agent_leg.AgentLeg`; this module takes turns.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from bot.dialogue import BotTurn
from voice_gateway.asr import AsrFinal, AsrPartial, ListenerEvent
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
from voice_gateway.pipeline.active_call import ActiveCall, start_call
from voice_gateway.pipeline.agent_leg import AgentLeg
from voice_gateway.pipeline.services import ANNOUNCEMENTS, DEFAULT_ANNOUNCEMENT, VoiceServices
from voice_gateway.pipeline.state import CallState, Phase, Signal, TranscriptLine
from voice_gateway.transports import CallConnection
from voice_gateway.tts import language_of
from voice_gateway.vad import NoInput, SpeechEnded, SpeechLikely, SpeechStarted

log = logging.getLogger(__name__)
RECORDING_SPOOL_BYTES = 64_000  # both tracks together: about 2 s at 8 kHz


class CallPipeline:
    """Implements the transports' `CallHandler` for one call; build one per connection with `services`."""

    def __init__(self, line: CallConnection, services: VoiceServices) -> None:
        self.line = line
        self.services = services
        self.call: ActiveCall | None = None  # built whole when the call starts

    @property
    def state(self) -> CallState | None:
        """The call's state (None before it started or when it was refused): for observers and tests."""
        return self.call.state if self.call is not None else None

    @property
    def leg(self) -> AgentLeg | None:
        """The human side (None before the start, or without a handoff service): for observers and tests."""
        return self.call.leg if self.call is not None else None

    def _live(self) -> ActiveCall | None:
        """The call, unless it has not started or has ended."""
        call = self.call
        return call if call is not None and call.state.phase is not Phase.ENDED else None

    # The CallHandler protocol.

    async def on_event(self, event: InboundEvent) -> None:
        match event:
            case CallStarted():
                await self._on_start(event)
            case AudioIn():
                if (call := self._live()) is not None:
                    await self._on_audio(call, event)
            case Dtmf(digit=digit):
                if (call := self._live()) is not None:
                    await self._on_key(call, digit, "transport")
            case MarkPlayed(name=name) if self.call is not None:
                self.call.voice.mark_played(name)
            case CallEnded(reason=reason):
                if (call := self._live()) is not None:
                    await self._on_end(call, reason)
            case TransportError():
                call_id = self.call.state.call_id if self.call is not None else ""
                self.services.observer.on_error(call_id, "transport")
                log.info("call %s: %s", call_id or "?", event)

    # Call lifecycle.

    async def _on_start(self, event: CallStarted) -> None:
        settings = self.services.settings
        if self.call is not None:
            log.warning("call %s: a second start message on one connection is ignored", event.call_id)
            return
        if not self.services.claim_call_id(event.call_id):
            log.warning("call %s refused: this call id was used already", event.call_id)
            self.services.observer.on_call_rejected(event.transport, "duplicate_call_id")
            await self.line.hang_up("duplicate_call_id")
            return
        self.call = call = start_call(event, self.services, self.line)
        # The dialled number's line (one callpilot, several numbers): its name goes in the log, its language greets
        line = self.services.line_for(event.called) if self.services.line_for is not None and event.called else None
        call.records.log(LifecycleKind.STARTED, transport=event.transport, caller=event.caller,
                         sample_rate=event.sample_rate,
                         **({"called": line.number, "line": line.name} if line is not None else {}))
        self.services.observer.on_call_started(event.call_id, event.transport, event.caller)
        await self.line.send(DisplayStatus("connected"))
        if settings.record_calls:
            spoken = ANNOUNCEMENTS.get(line.language or "") if line is not None else None
            call.say(settings.announcement or spoken or DEFAULT_ANNOUNCEMENT)
        caller = event.caller or None
        language = line.language if line is not None else None
        turn = await self.services.run(
            lambda: self.services.dialogue.start(event.call_id, caller, settings.channel, language))
        if event.parameters.get("callback_for") and self.services.opening is not None:
            try:
                turn = await self.services.opening(event.call_id, dict(event.parameters), turn)
            except Exception:  # the caller is on the line: the usual greeting rather than silence
                log.exception("call %s: the callback's opening failed", event.call_id)
        await self._apply(call, turn)

    async def _on_end(self, call: ActiveCall, reason: str) -> None:
        state = call.state
        state.move(Signal.END)
        if call.leg is not None:
            await call.leg.close(caller_hung_up=True)
        await call.voice.stop()
        call.records.bot_utterances(interrupted=False)
        recording = await self._finish_recording(call)
        call.records.log(
            LifecycleKind.ENDED,
            reason=reason,
            recording=recording,
            language=call.language,
            ivr_path=list(call.ivr_path),
            barge_ins=state.barge_ins,
            barge_in_onsets_ms=state.barge_in_onsets_ms,
            turn_gaps_ms=state.turn_gaps_ms,
        )
        self.services.observer.on_call_ended(state.call_id, reason)

    # Recording.

    def _spool_recording(self, call: ActiveCall) -> None:
        """Move the settled part of the recording from memory to its file (about once a second)."""
        recording = call.recording
        if recording is None or recording.recorder.held_bytes < RECORDING_SPOOL_BYTES:
            return
        try:
            recording.file.write(recording.recorder.drain())
        except OSError:  # disk full: the call goes on, the recording is given up
            log.exception("call %s: writing the recording failed; the call goes on unrecorded", call.state.call_id)
            self.services.observer.on_error(call.state.call_id, "recording")
            call.stop_recording()

    async def _finish_recording(self, call: ActiveCall) -> str | None:
        recording = call.recording
        if recording is None:
            return None

        def finish() -> str:
            recording.file.write(recording.recorder.drain(everything=True))
            return str(recording.file.finish())

        try:
            return await self.services.run(finish)
        except OSError:
            log.exception("call %s: saving the recording failed", call.state.call_id)
            recording.file.abandon()
            return None

    # Caller audio.

    async def _on_audio(self, call: ActiveCall, event: AudioIn) -> None:
        state, listener = call.state, call.listener
        state.clock_ms += event.duration_ms
        if call.recording is not None:
            call.recording.recorder.add_caller(event.pcm)
            self._spool_recording(call)
        if call.keys is not None:  # also while queued or with an agent: keys then go to the agent leg
            for digit in call.keys.accept(event.pcm):
                await self._on_key(call, digit, "inband")
        if call.leg is not None and call.leg.bot_deaf:  # queued or with an agent: the bot does not listen
            await call.leg.caller_audio(event.pcm)
            await self._pump(call)
            return
        pcm = call.to_asr.process(event.pcm)
        began = time.perf_counter()
        # Only audio that may end a pause or a turn can decode; the rest (VAD) costs less than a thread hop.
        try:
            if listener.may_decode(pcm):
                results = await self.services.decode(lambda: listener.accept(pcm))
            else:
                results = listener.accept(pcm)
        except Exception:  # the ASR failed (a crashed worker, a model that would not load): keys, not silence
            await self._asr_failed(call)
            return
        if call.asr_down:
            call.asr_down = False
            log.info("call %s: speech recognition works again", state.call_id)
        if any(isinstance(heard, AsrFinal) for heard in results):
            self.services.observer.on_asr_final(state.call_id, (time.perf_counter() - began) * 1000)
        for heard in results:
            await self._on_listener(call, heard)
        await self._pump(call)

    async def _asr_failed(self, call: ActiveCall) -> None:
        """Speech recognition failed on this call: say so and continue in the keypad menu (once); the next
        audio tries the ASR again, and a confident spoken request leaves the menu when it works again."""
        call_id = call.state.call_id
        self.services.observer.on_error(call_id, "asr")
        if call.asr_down:
            return
        call.asr_down = True
        log.exception("call %s: speech recognition failed; the caller goes to the keypad menu", call_id)
        call.listener.reset()
        await self._caller_turn(call, lambda: self.services.dialogue.speech_unavailable(call_id))

    async def _on_listener(self, call: ActiveCall, event: ListenerEvent) -> None:
        state = call.state
        if isinstance(event, SpeechLikely | SpeechStarted):  # confident speech stops the bot before the turn
            if call.bot_busy() and self.services.settings.barge_in:
                state.barge_in_onsets_ms.append(event.start_ms)
                await self._barge_in(call)
                if isinstance(event, SpeechLikely):
                    self._rearm(call)  # if no turn follows (the onset is lost), the no-input timer reprompts
        elif isinstance(event, AsrPartial):
            await self.line.send(DisplayTranscript("caller", event.text, final=False))
        elif isinstance(event, SpeechEnded):
            state.turn_silence_ms = event.silence_ms
        elif isinstance(event, AsrFinal):
            if state.masked_by_key(event.start_ms, event.end_ms) or not event.text.strip():
                self._rearm(call)
                return
            state.caller_turn_end_ms = float(event.end_ms)
            state.transcript.append(TranscriptLine("caller", event.text, event.end_ms))
            await self.line.send(DisplayTranscript("caller", event.text))
            call.language = language_of(event.text)
            heard = {"speaker": "caller", "text": event.text, "confidence": round(event.confidence, 3),
                     "language": call.language, "end_of_turn_ms": state.turn_silence_ms}
            state.turn_silence_ms = 0
            await self._caller_turn(call, lambda: self.services.dialogue.handle_text(state.call_id, event.text), heard)
        elif isinstance(event, NoInput) and not call.bot_busy():
            await self._caller_turn(call, lambda: self.services.dialogue.handle_no_input(state.call_id))

    # Keys.

    async def _on_key(self, call: ActiveCall, digit: str, source: str) -> None:
        state = call.state
        if state.phase is Phase.ENDED or not state.press_key(digit):
            return
        if call.leg is not None and call.leg.bot_deaf:  # an overflow choice, or a key for the agent
            call.records.log(LifecycleKind.DTMF, digit=digit, source=source, leg=call.leg.state.value)
            await call.leg.caller_key(digit)
            return
        state.transcript.append(TranscriptLine("caller", "", int(state.clock_ms), dtmf=digit))
        call.records.log(LifecycleKind.DTMF, digit=digit, source=source)
        if call.bot_busy():
            await self._barge_in(call)
        await self._caller_turn(call, lambda: self.services.dialogue.handle_dtmf(state.call_id, digit))

    # The bot's side.

    async def _caller_turn(self, call: ActiveCall, work: Callable[[], BotTurn],
                           heard: dict[str, object] | None = None) -> None:
        """Run one dialogue step off the loop and carry out its answer; `heard` is logged with its intent."""
        call.state.move(Signal.CALLER_TURN)
        call.listener.stop_listening()
        turn = await self.services.run(work)
        if heard is not None:  # with what the NLU understood: the records' intents (hot topics)
            call.records.log(LifecycleKind.TURN, **heard, intent=turn.debug.intent,
                             intent_confidence=turn.debug.confidence)
        await self._apply(call, turn)

    async def _apply(self, call: ActiveCall, turn: BotTurn) -> None:
        """Say the turn's messages; log a handoff (the handoff service routes it); hang up after playback."""
        state = call.state
        spoken_in = call.language or turn.language  # the caller's words', else the conversation's (keys only)
        if turn.handoff is not None:
            state.handoffs += 1
            handoff = turn.handoff
            call.records.log(LifecycleKind.HANDOFF, reason=handoff.reason, skill=handoff.skill,
                             priority=handoff.priority, caller_number=handoff.caller_number,
                             intents=list(handoff.intents), ivr_path=list(handoff.ivr_path), summary=handoff.summary,
                             language=call.language)
            self.services.observer.on_handoff(state.call_id, handoff.skill, handoff.reason)
            await self.line.send(DisplayStatus("handoff", handoff.skill))
            if call.leg is not None and not call.leg.bot_deaf:
                await call.leg.request(handoff, language=spoken_in or "en")
        call.ivr_path = turn.debug.ivr_path or call.ivr_path
        state.ivr_timeout_ms = int(turn.ivr_timeout * 1000) if turn.ivr_active and turn.ivr_timeout else None
        state.expects_yes_no = turn.expects_yes_no
        state.hangup_pending = state.hangup_pending or turn.hangup
        for message in turn.messages:
            call.say(message)
        if not turn.messages:
            state.move(Signal.SPEAK if call.bot_busy() else Signal.PLAYED)
            if state.phase is Phase.LISTENING:
                self._rearm(call)

    def bot_busy(self) -> bool:
        """The bot is talking: audio is queued, being synthesised, or not yet confirmed played."""
        return self.call is not None and self.call.bot_busy()

    async def _pump(self, call: ActiveCall) -> None:
        """Send what is due by the caller clock: the bot, else the leg (hold music, the agent); notice when
        playback is over."""
        state, voice, leg = call.state, call.voice, call.leg
        answered = state.answered_ms is not None
        await voice.send_due()
        if not answered and state.answered_ms is not None:
            call.records.log(LifecycleKind.ANSWERED, by="bot")
        if leg is not None and not call.bot_busy():
            await leg.quiet(state.clock_ms)  # an unanswered overflow offer may run out (and speak) here
            if not call.bot_busy():
                await voice.send_other(leg.due(state.clock_ms))  # hold music or the agent (right channel)
        if state.phase is Phase.SPEAKING and not call.bot_busy():
            state.move(Signal.PLAYED)
            call.records.bot_utterances(interrupted=False)
            if state.hangup_pending:
                await self._leave(call)
                return
            self._rearm(call)

    async def _barge_in(self, call: ActiveCall) -> None:
        """Stop playback now, drop queued speech (never control events), and listen."""
        state = call.state
        state.barge_ins += 1
        state.expects_yes_no = False  # the caller cut in before the yes/no question was over: not an answer to it
        await call.drop_speech()
        if state.phase is Phase.SPEAKING:
            state.move(Signal.BARGE_IN)
        await self.line.send(DisplayStatus("listening", "barge-in"))
        if state.hangup_pending:
            await self._leave(call)

    async def _leave(self, call: ActiveCall) -> None:
        """The bot has said its last words: hang up, or hand the caller on (a transfer)."""
        if call.state.transfer_to:
            call.records.log(LifecycleKind.HANDOFF, stage="transfer_out", target=call.state.transfer_to)
            await self.line.send(Transfer(call.state.transfer_to))
        else:
            await self.line.hang_up("bot_hangup")

    def _rearm(self, call: ActiveCall) -> None:
        """Listen for the caller's next turn: the IVR's key timeout when a menu is active, a shorter end of turn
        after a yes/no question."""
        if call.bot_deaf or call.state.phase is Phase.ENDED:
            return
        call.listener.listen(yes_no=call.state.expects_yes_no, no_input_timeout_ms=call.state.ivr_timeout_ms)
