"""Both sides of a call transcribed while an agent has it: the caller's audio (at the line's rate) and the agent's
(at the bridge's) each through a VAD + ASR stream of its own. Audio is queued and decoded on a task per side, so
the call's audio path never waits for a decode; a side that falls more than `MAX_BACKLOG_FRAMES` behind drops its
oldest audio (counted) rather than growing. Each final line goes to `emit(speaker, text)`: the agent leg logs it
(the call's transcript in the records) and sends it to the agent's desk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from voice_gateway.asr import AsrFinal, ListenerEvent, TurnListener
from voice_gateway.audio import StreamResampler
from voice_gateway.pipeline.services import VoiceServices
from voice_gateway.vad import VoiceActivityDetector

log = logging.getLogger(__name__)

Emit = Callable[[str, str], Awaitable[None]]
MAX_BACKLOG_FRAMES = 250  # 5 s of 20 ms frames per side
BRIDGE_RATE = 16000


class _Side:
    def __init__(self, services: VoiceServices, rate: int, asr_rate: int) -> None:
        detector = VoiceActivityDetector.create(services.vad, asr_rate, services.settings.endpoint)
        self.listener = TurnListener(detector, services.asr.stream(asr_rate))
        self.resampler = StreamResampler(rate, asr_rate)
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None


class LegTranscript:
    """`feed(speaker, pcm)` from the audio path (never blocks); `close()` when the agent leaves."""

    def __init__(self, services: VoiceServices, call_id: str, line_rate: int, emit: Emit) -> None:
        self.services, self.call_id, self.emit = services, call_id, emit
        asr_rate = 8000 if line_rate == 8000 else 16000
        self._sides = {"caller": _Side(services, line_rate, asr_rate), "agent": _Side(services, BRIDGE_RATE, asr_rate)}
        for speaker, side in self._sides.items():
            side.task = asyncio.create_task(self._run(speaker, side), name=f"leg-asr-{speaker}-{call_id}")
        self.dropped = 0
        self.lines = 0

    def feed(self, speaker: str, pcm16: bytes) -> None:
        side = self._sides[speaker]
        if side.queue.qsize() >= MAX_BACKLOG_FRAMES:
            with contextlib.suppress(asyncio.QueueEmpty):
                side.queue.get_nowait()
            self.dropped += 1
        side.queue.put_nowait(pcm16)

    async def _run(self, speaker: str, side: _Side) -> None:
        while True:
            pcm = await side.queue.get()
            results: list[ListenerEvent]
            if pcm is None:  # closing: the last words, if any
                results = list(await self.services.decode(side.listener.flush))
            else:
                audio = side.resampler.process(pcm)
                try:
                    results = await self._accept(side.listener, audio)
                except Exception:  # the ASR failed: this line goes untranscribed, the call goes on
                    log.exception("call %s: the %s's words could not be transcribed", self.call_id, speaker)
                    side.listener.reset()
                    continue
            for heard in results:
                if isinstance(heard, AsrFinal) and heard.text.strip():
                    self.lines += 1
                    try:
                        await self.emit(speaker, heard.text.strip())
                    except Exception:
                        log.exception("call %s: a transcript line was not passed on", self.call_id)
            if pcm is None:
                return

    async def _accept(self, listener: TurnListener, audio: bytes) -> list[ListenerEvent]:
        """VAD on the event loop; a decode (the end of a turn) on the ASR threads, as for the bot's turns."""
        if listener.may_decode(audio):
            return await self.services.decode(lambda: listener.accept(audio))
        return listener.accept(audio)

    async def close(self) -> None:
        """The agent left: transcribe what is queued (up to 2 s), then stop."""
        tasks = []
        for side in self._sides.values():
            side.queue.put_nowait(None)
            if side.task is not None:
                tasks.append(side.task)
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=2.0)
            for task in late:
                task.cancel()
        if self.dropped:
            log.info("call %s: %d frames left untranscribed (the ASR fell behind)", self.call_id, self.dropped)
