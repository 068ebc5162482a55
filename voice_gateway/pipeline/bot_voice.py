"""The bot's speaking side of a call: texts -> TTS sentence by sentence -> playout -> the line, and barge-in.

One `BotVoice` per call. It owns the text queue, the synthesis task and the playout; the call pipeline
decides when to speak and when to cut the bot off, and this module does the audio work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from functools import partial

from voice_gateway.audio import resample_pcm16
from voice_gateway.events import DisplayTranscript
from voice_gateway.pipeline.playout import PlayFrame, Playout
from voice_gateway.pipeline.services import VoiceServices
from voice_gateway.pipeline.state import CallState
from voice_gateway.recording import CallRecorder
from voice_gateway.transports import CallConnection
from voice_gateway.tts import SentenceStreamer

log = logging.getLogger(__name__)


class BotVoice:
    """Speaks queued texts into the playout and sends what is due by the caller's clock."""

    def __init__(self, state: CallState, services: VoiceServices, line: CallConnection,
                 recorder: CallRecorder | None) -> None:
        self.state = state
        self.services = services
        self.line = line
        self.recorder = recorder
        self.playout = Playout(state.sample_rate, lead_ms=services.settings.lead_ms)
        self._texts: asyncio.Queue[str] = asyncio.Queue()
        self._speaker: asyncio.Task[None] | None = None
        self._synthesising = False

    def start(self) -> None:
        self._speaker = asyncio.create_task(self._speak_forever(), name=f"speaker-{self.state.call_id}")

    async def stop(self) -> None:
        task, self._speaker = self._speaker, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def queue(self, text: str) -> None:
        self._texts.put_nowait(text)

    def busy(self) -> bool:
        """The bot is talking: audio is queued, being synthesised, or not yet confirmed played."""
        state = self.state
        unheard = any(not s.heard and name not in state.marks_ignored for name, s in state.sentences.items())
        return self._synthesising or not self._texts.empty() or self.playout.pending or unheard

    async def _speak_forever(self) -> None:
        """Synthesise queued texts sentence by sentence into the playout, a mark after each sentence."""
        state, playout = self.state, self.playout
        settings = self.services.settings
        streamer = SentenceStreamer(self.services.tts, voice=settings.voice, id_patterns=settings.id_patterns,
                                    cache=self.services.tts_cache)
        while True:
            text = await self._texts.get()
            asked: float | None = time.perf_counter()
            self._synthesising = True
            state.utterances += 1
            try:
                async for sentence in streamer.stream(text):
                    if asked is not None:
                        self.services.observer.on_tts_first_audio(state.call_id, (time.perf_counter() - asked) * 1000)
                        asked = None
                    audio = sentence.audio
                    to_line = partial(resample_pcm16, audio.pcm, audio.sample_rate, state.sample_rate)
                    pcm = await self.services.run(to_line)
                    playout.push_audio(pcm)
                    playout.push_mark(state.new_mark(sentence.text))
                    await self.line.send(DisplayTranscript("bot", sentence.text))
            except Exception:
                self.services.observer.on_error(state.call_id, "tts")
                log.exception("call %s: could not speak %r", state.call_id, text)
            finally:
                self._synthesising = self._texts.qsize() > 0

    def mark_played(self, name: str) -> None:
        """The line echoed a mark: the caller heard that sentence (unless it was cut off before)."""
        if name in self.state.marks_ignored:
            return
        sentence = self.state.sentences.get(name)
        if sentence is not None:
            sentence.heard = True

    async def send_due(self) -> None:
        """Send the bot audio and marks due by the caller clock (the first frame after a caller turn
        measures the turn gap)."""
        state = self.state
        for item in self.playout.due(state.clock_ms):
            if isinstance(item, PlayFrame):
                if state.answered_ms is None:
                    state.answered_ms = item.at_ms
                if state.caller_turn_end_ms is not None:
                    state.turn_gaps_ms.append(round(item.at_ms - state.caller_turn_end_ms, 1))
                    self.services.observer.on_turn_gap(state.call_id, state.turn_gaps_ms[-1])
                    state.caller_turn_end_ms = None
                if self.recorder is not None:
                    self.recorder.add_bot(item.pcm)
                await self.line.send_audio(item.pcm)
            else:
                await self.line.send_mark(item.name)

    async def send_other(self, frames: list[bytes]) -> None:
        """Audio that is not the bot's (hold music, the agent's voice), recorded on the bot's channel."""
        for pcm in frames:
            if self.recorder is not None:
                self.recorder.add_bot(pcm)
            await self.line.send_audio(pcm)

    async def cut_off(self, log_heard: Callable[[], None]) -> None:
        """Stop the bot now: queued texts, synthesis in progress and audio not played yet are dropped;
        `log_heard` then records what the caller did hear."""
        state = self.state
        while not self._texts.empty():
            self._texts.get_nowait()
        # The clear goes first: stopping the synthesis may wait for a sentence being synthesised (~100 ms).
        self.playout.clear(state.clock_ms)
        await self.line.send_clear()
        if self._speaker is not None and self._synthesising:
            await self.stop()
            self._synthesising = False
            self.start()
            self.playout.clear(state.clock_ms)  # audio it pushed meanwhile
        if self.recorder is not None:
            self.recorder.cut_bot()
        # Marks not echoed by now belong to audio the caller did not hear (Twilio echoes cleared marks too).
        state.marks_ignored.update(name for name, s in state.sentences.items() if not s.heard)
        log_heard()
