"""The voice gateway inside the web app: the voice models, AudioSocket and SIP servers, agents' phones, callbacks
(`VoiceRuntime`); its routes (Twilio, the softphone) are `callpilot.voice_routes`."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from bot.dialogue import BotTurn, DialogueEngine, Interpreter
from bot.dialogue.turn_end import TurnEndJudge
from bot.training_data.project import load_nlu_text
from callpilot.agent_phones import AgentPhones, speak_with
from callpilot.brains import build_dialogue, voice_dialogue
from callpilot.call_command import place_call  # `callpilot call`, still importable from here
from callpilot.callbacks import CallbackDialler, Place, callback_opening, sip_place, twilio_place
from callpilot.consult import ConsultService
from callpilot.divert import Divert
from callpilot.handoff_port import bot_resumer
from callpilot.records.redaction import redact_stored
from callpilot.settings import Settings
from callpilot.sip_out import SipDialler
from callpilot.voice_access import (
    RateLimiter,
    call_limits,
)
from handoff import agent_directory
from handoff.model import CallbackRequest
from handoff.redis_conn import Keys
from handoff.service import HandoffService
from voice_gateway.asr import AsrSettings
from voice_gateway.call_log import CallEvent
from voice_gateway.pipeline import CallPipeline, Dialogue, PipelineSettings, VoiceServices, load_services
from voice_gateway.pipeline.handoff_port import HandoffPort
from voice_gateway.pipeline.observer import PipelineObserver
from voice_gateway.pipeline.services import Line
from voice_gateway.pipeline.transcript_fixes import TranscriptFixer
from voice_gateway.transports import AudioSocketServer, CallConnection, CallGate
from voice_gateway.transports.sip.register import Registration
from voice_gateway.transports.sip.registrar import Registrar
from voice_gateway.transports.sip.server import SipServer
from voice_gateway.twilio_rest import TwilioRest, dial_twiml
from voice_gateway.vad import EndpointConfig

log = logging.getLogger("callpilot.voice")

GIL_SWITCH_INTERVAL_S = 0.0005
LOAD_WAIT_S = 120.0  # a call arriving while the models load waits this long before it is refused


def pipeline_settings(settings: Settings) -> PipelineSettings:
    """The call pipeline's settings from callpilot's."""
    endpoint = EndpointConfig(
        min_speech_ms=240,  # a turn needs this much speech (a barge-in 120 ms of confident speech): not coughs
        end_of_turn_silence_ms=settings.end_of_turn_ms,
        short_end_of_turn_silence_ms=min(300, settings.end_of_turn_ms),
    )
    return PipelineSettings(
        endpoint=endpoint,
        record_calls=settings.record_calls,
        agent_transcript=settings.agent_transcript,
        recordings_dir=settings.recordings_dir,
        announcement=settings.recording_announcement,
        id_patterns=tuple(id_patterns(settings.data_dir)),
    )


def asr_settings(settings: Settings) -> AsrSettings:
    """The recogniser's settings from callpilot's: every `asr_*` setting reaches the engine."""
    return AsrSettings(
        engine=settings.asr_engine,
        vosk_model_dir=settings.asr_vosk_model_dir,
        language=settings.asr_language,
        languages=tuple(settings.languages),
        cpu_threads=settings.asr_cpu_threads,
        num_workers=settings.asr_num_workers,
        processes=settings.asr_processes,
    )


def id_patterns(data_dir: Path) -> list[str]:
    """The NLU data's regular expressions for identifiers callers read out (order, repair numbers ...)."""
    patterns: list[str] = []
    for path in sorted((data_dir / "nlu").rglob("*.yml")):
        nlu = load_nlu_text(path.read_text(encoding="utf-8"), str(path))
        patterns += [pattern for regex in nlu.regexes if regex.name.endswith("_number") for pattern in regex.patterns]
    return patterns


class RepairingDialogue:
    """The dialogue engine as the phone line sees it: what the ASR heard is repaired before the NLU reads it."""

    def __init__(self, dialogue: Dialogue, fixer: TranscriptFixer) -> None:
        self.dialogue = dialogue
        self.fixer = fixer

    def start(self, sender_id: str, caller_number: str | None = None, channel: str = "voice",
              language: str | None = None) -> BotTurn:
        return self.dialogue.start(sender_id, caller_number, channel, language)

    def handle_text(
        self, sender_id: str, text: str, caller_number: str | None = None, channel: str | None = None
    ) -> BotTurn:
        return self.dialogue.handle_text(sender_id, self.fixer.fix(text), caller_number, channel)

    def handle_dtmf(
        self, sender_id: str, keys: str, caller_number: str | None = None, channel: str | None = None
    ) -> BotTurn:
        return self.dialogue.handle_dtmf(sender_id, keys, caller_number, channel)

    def handle_no_input(self, sender_id: str) -> BotTurn:
        return self.dialogue.handle_no_input(sender_id)

    def speech_unavailable(
        self, sender_id: str, caller_number: str | None = None, channel: str | None = None
    ) -> BotTurn:
        return self.dialogue.speech_unavailable(sender_id, caller_number, channel)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.dialogue, name)  # the rest of the engine's API (hand back, sessions) unchanged


class HandoffSource(Protocol):
    """The handoff runtime as the voice sees it (`callpilot.handoff_port.HandoffRuntime`)."""

    def deps(self) -> Any: ...

    def when_ready(self, use: Callable[[HandoffPort], None]) -> None: ...


class VoiceRuntime:
    """Loads the voice models once (in the background) and hands every call a `CallPipeline` over them."""

    def __init__(self, settings: Settings, interpreter: Interpreter, *, observer: PipelineObserver | None = None,
                 handoff: HandoffSource | None = None,
                 call_log_listeners: Sequence[Callable[[CallEvent], None]] = (),
                 callback_listeners: Sequence[Callable[[CallbackRequest], None]] = (),
                 engine_listeners: Sequence[Callable[[DialogueEngine], None]] = ()) -> None:
        """`observer` gets every call's metrics and webhooks (callpilot.ops); `handoff` is the handoff runtime
        (agents' phones ring through its service; calls hand over through its port once it is up); the call
        log's events, callback attempts and each dialogue engine built go to their listeners (the records'
        writer, the trainer's workbench)."""
        self.settings = settings
        self.interpreter = interpreter
        self.services: VoiceServices | None = None
        self.error: str | None = None
        self.ready = threading.Event()
        self.audiosocket: AudioSocketServer | None = None
        self.sip: SipServer | None = None
        self._loading: threading.Thread | None = None
        self._starting: asyncio.Task[None] | None = None
        self._sip_starting: asyncio.Task[None] | None = None
        self.handoff: HandoffPort | None = None  # the humans, once the handoff service runs
        self.handoff_deps: Callable[[], Any] | None = handoff.deps if handoff is not None else None
        self.phones: AgentPhones | None = None
        self.callbacks: CallbackDialler | None = None
        self._callbacks_task: asyncio.Task[None] | None = None
        self.callback_listeners = tuple(callback_listeners)
        self.twilio = twilio_rest(settings)  # Twilio's REST API (transfers, callbacks), when configured
        self.divert = Divert(settings.backup_number, when_unhealthy=settings.backup_when_unhealthy,
                             voice_status=self.status, redis=self._redis, key=Keys().divert,
                             line_backup=lambda called: (found[1].backup_number
                                                         if (found := settings.line(called)) else None),
                             lines_have_backups=any(line.backup_number for line in settings.lines.values()))
        self._diverting: asyncio.Task[None] | None = None
        self._consulting: asyncio.Task[None] | None = None  # attended transfers' consultation calls
        self.dialler: SipDialler | None = None
        self.observer = observer
        self.gate = CallGate(settings.max_calls, on_reject=lambda transport: self.rejected(transport, "busy"))
        self.limits = call_limits(settings)  # start timeout, longest call
        self.phone_limit = RateLimiter(settings.phone_calls_per_minute)  # softphone calls per address a minute
        self.call_log_listeners = tuple(call_log_listeners)
        self.engine_listeners = tuple(engine_listeners)
        self._lock = threading.Lock()
        self._stopped = False
        if handoff is not None:
            handoff.when_ready(self.attach_handoff)

    def load(self) -> None:
        """Load ASR, VAD and TTS and build the dialogue engine (seconds; runs in a thread)."""
        try:
            engine = build_dialogue(self.settings, self.interpreter)
            for engine_listener in self.engine_listeners:
                engine_listener(engine)
            dialogue = voice_dialogue(self.settings, engine)  # the engine, or a Rasa server in front of it
            fixer = TranscriptFixer(id_patterns(self.settings.data_dir))
            services = load_services(
                RepairingDialogue(dialogue, fixer),
                asr=asr_settings(self.settings),
                tts_engine=self.settings.tts_engine,
                use_edge=self.settings.tts_network_voices,
                languages=tuple(self.settings.languages),
                call_log_path=self.settings.call_log,
                call_log_redact=redact_stored,  # the file: caller numbers, cards, e-mails never in clear
                settings=pipeline_settings(self.settings),
            )
            with self._lock:
                if self._stopped:  # the server stopped while the models loaded: nothing may outlive it
                    services.close()
                    return
                self.services = services
            self.services.handoff, self.services.resume_bot = self.handoff, bot_resumer(engine)
            self.services.line_for = line_for(self.settings)
            if self.settings.turn_end == "words":
                patterns = [pattern.pattern for pattern in fixer.id_patterns]
                self.services.turn_end = TurnEndJudge(self.interpreter, patterns, fixer.fix)
            renderer = engine.brain.renderer
            self.services.opening = callback_opening(
                self._handoff_service, lambda name, language: renderer.render(name, {}, language=language))
            if self.observer is not None:
                self.services.observer = self.observer
            for listener in self.call_log_listeners:
                self.services.call_log.subscribe(listener)
            log.info("voice gateway ready: ASR %s, TTS %s", self.services.asr.name, self.services.tts.name)
        except Exception as exc:  # no voice must not take the text channels down
            self.error = f"{type(exc).__name__}: {exc}"
            log.exception("could not load the voice models")
        finally:
            self.ready.set()

    def status(self) -> dict[str, object]:
        """For `/health/voice`: loading | ready | failed, the engines configured (and loaded), the error, and
        how many times dead ASR worker processes were replaced (`asr_worker_restarts`), the TTS cache's hits,
        misses and size."""
        if not self.ready.is_set():
            state = "loading"
        else:
            state = "failed" if self.services is None else "ready"
        services = self.services
        return {
            "status": state,
            "asr": services.asr.name if services is not None else self.settings.asr_engine,
            "tts": services.tts.name if services is not None else self.settings.tts_engine,
            "error": self.error,
            "asr_worker_restarts": getattr(getattr(services.asr, "transcriber", None), "rebuilds", 0)
            if services is not None else 0,
            # sentences spoken from the shared TTS cache vs synthesised (the benchmark reports the share)
            "tts_cache_hits": services.tts_cache.hits if services is not None and services.tts_cache else 0,
            "tts_cache_misses": services.tts_cache.misses if services is not None and services.tts_cache else 0,
            # the audio it holds: grows as new sentences are said, up to its bound (`SentenceCache.max_bytes`)
            "tts_cache_bytes": services.tts_cache.size_bytes if services is not None and services.tts_cache else 0,
            # SIP: the port listened on and each provider registration's state (no password)
            "sip": None if self.sip is None else {"port": self.sip.port, "registrations": [
                {"registrar": r.registrar, "user": r.user, "state": r.state, "detail": r.detail}
                for r in self.sip.registrations],
                # agents' phones registered to us, and agents on duty on a phone (registered, fixed or a number)
                "phones": sorted(self.sip.registrar.bindings) if self.sip.registrar is not None else [],
                "agents_on_phones": sorted(self.phones.sessions) if self.phones is not None else []},
            "divert": self.divert.status(),  # the backup number: whether new calls go there, and why
        }

    def attach_handoff(self, port: HandoffPort | None) -> None:
        """Calls hand over to agents through `port` (None: handoffs are only logged)."""
        self.handoff = port
        if self.services is not None:
            self.services.handoff = port

    def start_loading(self) -> None:
        if self._loading is None:
            self._loading = threading.Thread(target=self.load, daemon=True, name="voice-load")
            self._loading.start()

    async def wait_ready(self) -> VoiceServices | None:
        self.start_loading()
        await asyncio.to_thread(self.ready.wait, LOAD_WAIT_S)
        return self.services

    def rejected(self, transport: str, reason: str) -> None:
        """A call refused before it started (counted in /metrics)."""
        if self.observer is not None:
            self.observer.on_call_rejected(transport, reason)

    def new_call(self, line: CallConnection) -> CallPipeline:
        assert self.services is not None, "calls are only accepted once the voice models are loaded"
        return CallPipeline(line, self.services)

    async def start(self) -> None:
        """Start loading, then listen for AudioSocket calls once the models are ready (port 0 = off)."""
        # Every 20 ms frame of every call crosses from the event loop to a worker thread and back; with the
        # default 5 ms GIL switch interval each crossing can wait that long behind busy threads, and a call
        # falling behind then catches up at only ~2x real time.
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        self.start_loading()
        self._diverting = asyncio.create_task(self.divert.run(), name="divert")
        if self.settings.audiosocket_port:
            self._starting = asyncio.create_task(self._serve_audiosocket(), name="audiosocket")
        if self.settings.sip_port:
            self._sip_starting = asyncio.create_task(self._serve_sip(), name="sip")
        elif self.twilio is not None and self.settings.twilio_caller_id and self.settings.public_url:
            self.start_callbacks(twilio_place(self.twilio, from_number=self.settings.twilio_caller_id,
                                              voice_url=self.settings.public_url.rstrip("/") + "/twilio/voice",
                                              ring_timeout_s=self.settings.callback_ring_timeout_s))

    async def twilio_redirect(self, call_sid: str, target: str) -> None:
        """A Twilio call the bot transfers: its TwiML becomes a <Dial> to the target."""
        assert self.twilio is not None
        await self.twilio.redirect_call(call_sid, dial_twiml(target, caller_id=self.settings.twilio_caller_id))

    async def _serve_sip(self) -> None:
        """Listen at once (while the models load, new calls go to the backup number, or get 503); agents'
        phones and callbacks once the voice is ready."""
        settings = self.settings
        address = settings.sip_address or ("127.0.0.1" if settings.sip_host in ("0.0.0.0", "::") else settings.sip_host)
        accounts = [Registration(a.registrar, a.user, a.password, f"<sip:{a.user}@{address}:{settings.sip_port}>",
                                 a.expires) for a in settings.sip_register]
        directory = agent_directory(settings)
        server = SipServer(self.new_call, host=settings.sip_host, port=settings.sip_port,
                           address=settings.sip_address, allow=settings.sip_allow, limits=call_limits(settings),
                           gate=self.gate, registrations=accounts, registrar=Registrar(directory.phone_ha1))
        server.divert, server.ready = self.divert.target, lambda: self.services is not None
        try:
            await server.start()
        except OSError as exc:
            log.warning("SIP: cannot listen on %s:%s/udp: %s", server.host, server.port, exc)
            return
        self.sip = server
        log.info("SIP listening on %s:%s/udp", server.host, server.port)
        trunk_host = (settings.sip_trunk or "").split(":", 1)[-1].split(":")[0]
        auth = next(((a.user, a.password) for a in settings.sip_register
                     if a.registrar.split(":", 1)[1].split(":")[0].split(";")[0] == trunk_host), None)
        self.dialler = SipDialler(server, trunk=settings.sip_trunk, trunk_auth=auth, caller_id=settings.sip_caller_id)
        dialler = self.dialler
        server.dial_target = lambda target: dialler.dial(target)  # transfers the caller's side cannot REFER
        if settings.sip_trunk:
            server.target_uri = dialler.uri_for
        if await self.wait_ready() is None:
            return  # no voice: SIP only diverts (or answers 503)
        if self.handoff_deps is not None and self.services is not None:
            tts = self.services.tts
            self.phones = AgentPhones(directory.agents, self.handoff_deps, self.dialler,
                                      lambda text: speak_with(tts, text), wrap_up_s=settings.agent_phone_wrap_up_s)
            server.on_phone = self.phones.on_phone
            self.phones.start()
            consults = ConsultService(self.handoff_deps, self.dialler, owner=f"{os.getpid()}-{id(self)}",
                                      ring_timeout_s=settings.callback_ring_timeout_s)
            self._consulting = asyncio.create_task(consults.run(), name="consult")
            self.start_callbacks(sip_place(self.dialler, server, ring_timeout_s=settings.callback_ring_timeout_s))

    def _redis(self) -> Any:
        service = self._handoff_service()
        if service is not None:
            self.divert.key = service.keys.divert
        return service.client if service is not None else None

    def _handoff_service(self) -> HandoffService | None:
        found = self.handoff_deps() if self.handoff_deps is not None else None
        return found[0] if found is not None else None

    def start_callbacks(self, place: Place) -> None:
        """Dial requested callbacks with `place` (SIP, or Twilio's Calls API)."""
        if self._callbacks_task is not None or not self.settings.callbacks_dialled:
            return
        settings = self.settings

        def changed(request: CallbackRequest) -> None:
            for listener in self.callback_listeners:
                listener(request)

        self.callbacks = CallbackDialler(self._handoff_service, place, max_attempts=settings.callback_max_attempts,
                                         retry_s=settings.callback_retry_s,
                                         ring_timeout_s=settings.callback_ring_timeout_s, on_change=changed)
        self._callbacks_task = asyncio.create_task(self.callbacks.run(), name="callbacks")

    async def _serve_audiosocket(self) -> None:
        if await self.wait_ready() is None:
            return
        server = AudioSocketServer(self.new_call, host=self.settings.audiosocket_host,
                                   port=self.settings.audiosocket_port, limits=call_limits(self.settings),
                                   gate=self.gate, reuse_port=self.settings.worker_index is not None)
        try:
            await server.start()
        except OSError as exc:
            log.warning("AudioSocket: cannot listen on %s:%s: %s", server.host, server.port, exc)
            return
        self.audiosocket = server
        log.info("AudioSocket listening on %s:%s", server.host, server.port)

    async def stop(self) -> None:
        if self._starting is not None:
            self._starting.cancel()
        self.gate.max_calls = 0  # shutting down: no new call is taken
        if self._sip_starting is not None:
            self._sip_starting.cancel()
        if self.audiosocket is not None:  # calls in progress get `shutdown_drain_s`, then a proper hang-up
            await self.audiosocket.close(drain_s=self.settings.shutdown_drain_s)
        if self._callbacks_task is not None:
            self._callbacks_task.cancel()
        if self._diverting is not None:
            self._diverting.cancel()
        if self._consulting is not None:
            self._consulting.cancel()
        if self.phones is not None:  # agents' phones off the floor; their calls go back to the queue
            await self.phones.close()
        if self.sip is not None:  # the same for SIP calls, ended with a BYE
            await self.sip.close(drain_s=self.settings.shutdown_drain_s)
        with self._lock:
            self._stopped = True  # models still loading are closed as soon as they are loaded
            services = self.services
        if services is not None:
            await asyncio.to_thread(services.close)  # waits for the ASR worker processes to exit


def line_for(settings: Settings) -> Callable[[str], Line | None]:
    """The pipeline's view of settings `lines`: the dialled number's line, or None."""

    def find(called: str) -> Line | None:
        found = settings.line(called)
        return None if found is None else Line(found[0], found[1].name, found[1].language)

    return find


def twilio_rest(settings: Settings) -> TwilioRest | None:
    """Twilio's REST API client when the account SID and auth token are set."""
    if not settings.twilio_account_sid or not settings.twilio_auth_token:
        return None
    return TwilioRest(settings.twilio_account_sid, settings.twilio_auth_token, settings.twilio_api_url)


__all__ = ["HandoffSource", "RepairingDialogue", "VoiceRuntime", "asr_settings", "id_patterns", "pipeline_settings",
           "place_call"]
