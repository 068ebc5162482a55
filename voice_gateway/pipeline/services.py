"""What every call shares: models loaded once (ASR, VAD, TTS), the dialogue engine, the call log, a thread pool."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

from bot.dialogue import BotTurn
from bot.dialogue.turn_end import TurnEnd
from voice_gateway.asr import AsrEngine, AsrSettings
from voice_gateway.call_log import CallLog
from voice_gateway.pipeline.handoff_port import HandoffPort
from voice_gateway.pipeline.observer import NullObserver, PipelineObserver
from voice_gateway.tts import SentenceCache, TtsEngine
from voice_gateway.vad import EndpointConfig, VadBackend

T = TypeVar("T")

DEFAULT_ANNOUNCEMENT = "This call may be recorded for quality and training purposes."
ANNOUNCEMENTS = {"en": DEFAULT_ANNOUNCEMENT, "zh": "本次通话可能会被录音，用于提升服务质量。"}  # by the line's language


@dataclass(frozen=True)
class Line:
    """One of the numbers callpilot answers, as the pipeline needs it."""

    number: str
    name: str
    language: str | None = None


class Dialogue(Protocol):
    """The part of `bot.dialogue.DialogueEngine` a call needs."""

    def start(self, sender_id: str, caller_number: str | None = None, channel: str = "voice",
              language: str | None = None) -> BotTurn: ...

    def handle_text(
        self, sender_id: str, text: str, caller_number: str | None = None, channel: str | None = None
    ) -> BotTurn: ...

    def handle_dtmf(
        self, sender_id: str, keys: str, caller_number: str | None = None, channel: str | None = None
    ) -> BotTurn: ...

    def handle_no_input(self, sender_id: str) -> BotTurn: ...

    def speech_unavailable(
        self, sender_id: str, caller_number: str | None = None, channel: str | None = None
    ) -> BotTurn: ...


@dataclass(frozen=True)
class PipelineSettings:
    """How calls behave."""

    # Turn-taking: a turn needs 240 ms of speech, a barge-in 120 ms of confident speech (`EndpointConfig`), so
    # coughs and clicks do not count.
    endpoint: EndpointConfig = field(default_factory=lambda: EndpointConfig(min_speech_ms=240))
    barge_in: bool = True
    inband_dtmf: bool = True
    agent_transcript: bool = True  # transcribe both sides while an agent has the caller (desk + records)
    # Playback
    lead_ms: int = 100  # bot audio sent ahead of playback; what a `clear` has to drop at most
    voice: str | None = None
    # Regexes of identifiers the bot reads out (the NLU data's `*_number` regexes): spoken digit by digit
    id_patterns: tuple[str, ...] = ()
    # Recording
    record_calls: bool = False
    recordings_dir: Path = Path("results/recordings")
    announcement: str | None = None  # said before the greeting when calls are recorded
    channel: str = "voice"


@dataclass
class VoiceServices:
    """Loaded once per process and shared by all calls; CPU-heavy work runs on `executor`."""

    asr: AsrEngine
    vad: VadBackend
    tts: TtsEngine
    dialogue: Dialogue
    # Sentences without caller data (greetings, menus, common answers) synthesised once for every call
    tts_cache: SentenceCache | None = None
    call_log: CallLog = field(default_factory=lambda: CallLog(None))
    settings: PipelineSettings = field(default_factory=PipelineSettings)
    observer: PipelineObserver = field(default_factory=NullObserver)  # metrics, webhooks (set by the app)
    # Many threads: most wait on the ASR model (it decodes a few utterances at a time), and a call's 20 ms
    # VAD step must never queue behind other calls' decodes (that would stall playout and barge-in for all).
    executor: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(64, thread_name_prefix="voice"))
    # As many decodes at once as the ASR model has workers (faster-whisper `num_workers`, 2 by default).
    asr_executor: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(2, thread_name_prefix="asr"))
    # The humans: queue, agents and audio bridge (None: handoffs are only logged); `resume_bot(call_id)`
    # takes the caller's conversation out of handoff mode when an agent hands the call back.
    handoff: HandoffPort | None = None
    resume_bot: Callable[[str], None] | None = None
    # A call callpilot placed opens differently: `opening(call_id, parameters, greeting)` turns the bot's
    # greeting into that call's first turn (a callback: who is calling, then the handoff with the original
    # context). Called when CallStarted carries `callback_for`.
    opening: Callable[[str, dict[str, str], BotTurn], Awaitable[BotTurn]] | None = None
    # The dialled number's line (settings `lines`): its name (in the call log) and language (the greeting's),
    # or None for a number that has no line of its own.
    line_for: Callable[[str], Line | None] | None = None
    # Judges the caller's words at a pause (`bot.dialogue.turn_end.TurnEndJudge`): a whole request ends the turn
    # sooner, an unfinished one waits longer. None: the silence alone ends turns.
    turn_end: Callable[[str], TurnEnd] | None = None
    # The call ids this process served lately: a reused id is refused, never merged into another call's
    # records or recording
    recent_call_ids: OrderedDict[str, None] = field(default_factory=OrderedDict)

    def claim_call_id(self, call_id: str, keep: int = 100_000) -> bool:
        """True the first time this process sees `call_id` (within the last `keep` calls)."""
        if call_id in self.recent_call_ids:
            return False
        self.recent_call_ids[call_id] = None
        while len(self.recent_call_ids) > keep:
            self.recent_call_ids.popitem(last=False)
        return True

    def hold_turn(self, text: str) -> int | None:
        """This turn's end-of-turn silence given the words so far (None: the usual one)."""
        if self.turn_end is None:
            return None
        endpoint = self.settings.endpoint
        return {
            TurnEnd.COMPLETE: endpoint.complete_silence_ms,
            TurnEnd.MAY_CONTINUE: endpoint.may_continue_silence_ms,
            TurnEnd.INCOMPLETE: endpoint.incomplete_silence_ms,
        }.get(self.turn_end(text))

    async def decode(self, work: Callable[[], T]) -> T:
        """Run speech recognition on its own few threads, first come first served: decodes sharing the CPU all
        at once (GIL-bound feature extraction included) each took ten times longer under load."""
        return await asyncio.get_running_loop().run_in_executor(self.asr_executor, work)

    async def run(self, work: Callable[[], T]) -> T:
        """Run blocking work (ASR decode, VAD, NLU) off the event loop, so one call never delays another."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, work)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.asr_executor.shutdown(wait=False, cancel_futures=True)
        close = getattr(getattr(self.asr, "transcriber", None), "close", None)
        if callable(close):
            close()  # ASR worker processes


def load_services(
    dialogue: Dialogue,
    *,
    asr: AsrSettings | None = None,
    tts_engine: str = "hibari",
    use_edge: bool = False,
    call_log_path: Path | None = None,
    call_log_redact: Callable[[str], str] | None = None,
    settings: PipelineSettings | None = None,
    languages: tuple[str, ...] = ("en",),
) -> VoiceServices:
    """Load the offline models (a few seconds): the recogniser `asr` describes (default whisper-tiny.en in this
    process); `tts_engine` is "hibari", "piper", "espeak" or "chain" (English; with "zh" in `languages`,
    Chinese text goes to edge-tts zh-CN if `use_edge`, else espeak-ng's Mandarin voice)."""
    from voice_gateway.asr import load_engine
    from voice_gateway.tts import EspeakTts, default_chain, load_offline
    from voice_gateway.tts.engines import with_mandarin
    from voice_gateway.vad import SileroVad

    tts: TtsEngine
    if tts_engine == "espeak":
        tts = EspeakTts()
    elif tts_engine == "chain":
        tts = default_chain(use_edge=use_edge)
    else:
        tts = load_offline(tts_engine)
    if "zh" in languages and tts_engine != "chain":
        tts = with_mandarin(tts, use_edge=use_edge)
    asr = asr or AsrSettings()
    return VoiceServices(
        asr=load_engine(asr),
        vad=SileroVad(),
        tts=tts,
        tts_cache=SentenceCache(tts),
        dialogue=dialogue,
        call_log=CallLog(call_log_path, redact=call_log_redact),
        settings=settings or PipelineSettings(),
        # as many decodes at once as there are ASR worker processes (two threads at least)
        asr_executor=ThreadPoolExecutor(max(2, asr.processes), thread_name_prefix="asr"),
    )
