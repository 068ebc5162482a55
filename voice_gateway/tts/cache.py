"""Rendered prompts (IVR menus, fixed responses) kept ready to send, bounded by bytes, least recently used out."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from voice_gateway.tts.formats import NATIVE, OutputFormat, encode, output_rate
from voice_gateway.tts.types import AudioChunk, EngineUnavailable, TtsEngine

PromptKey = tuple[str, str | None, str, str]  # engine, voice, text, output format


@dataclass(frozen=True)
class RenderedPrompt:
    """A text rendered for one transport: encoded bytes, their rate, and the engine that spoke them."""

    text: str
    audio: bytes
    output: OutputFormat
    sample_rate: int
    engine: str


class PromptCache:
    """Renders texts through one engine once per (engine, voice, text, output format); LRU by total bytes."""

    def __init__(self, engine: TtsEngine, *, max_bytes: int = 32 * 1024 * 1024) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        self.engine = engine
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[PromptKey, RenderedPrompt] = OrderedDict()
        self._bytes = 0
        self._rendering: dict[PromptKey, asyncio.Task[RenderedPrompt]] = {}

    @property
    def size_bytes(self) -> int:
        """Bytes of audio held."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def key(self, text: str, voice: str | None, output: OutputFormat) -> PromptKey:
        """The cache key of a prompt."""
        return (self.engine.name, voice, text, output.key)

    def __contains__(self, key: PromptKey) -> bool:
        return key in self._entries

    async def _render(self, text: str, voice: str | None, output: OutputFormat) -> RenderedPrompt:
        chunks = [chunk async for chunk in self.engine.synthesize(text, voice) if chunk.pcm]
        if not chunks:
            raise EngineUnavailable(f"{self.engine.name}: no audio for {text!r}")
        audio = AudioChunk.join(chunks)
        return RenderedPrompt(text, encode(audio, output), output, output_rate(audio, output), audio.engine)

    def _store(self, key: PromptKey, prompt: RenderedPrompt) -> None:
        if len(prompt.audio) > self.max_bytes:
            return
        self._entries[key] = prompt
        self._bytes += len(prompt.audio)
        while self._bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= len(evicted.audio)

    async def get(self, text: str, *, voice: str | None = None, output: OutputFormat = NATIVE) -> RenderedPrompt:
        """The prompt from the cache, or rendered now (concurrent requests for one prompt render it once)."""
        key = self.key(text, voice, output)
        if (cached := self._entries.get(key)) is not None:
            self.hits += 1
            self._entries.move_to_end(key)
            return cached
        self.misses += 1
        task = self._rendering.get(key)
        if task is None:
            task = asyncio.create_task(self._render(text, voice, output), name=f"prompt-{self.engine.name}")
            self._rendering[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        # Shielded: a caller hanging up mid-render does not waste the render for the next caller.
        return await asyncio.shield(task)

    def _finished(self, key: PromptKey, task: asyncio.Task[RenderedPrompt]) -> None:
        self._rendering.pop(key, None)
        if not task.cancelled() and task.exception() is None:
            self._store(key, task.result())

    async def warm(self, texts: Iterable[str], *, voice: str | None = None, output: OutputFormat = NATIVE) -> int:
        """Render `texts` ahead of the first call (one at a time: start-up must not starve live calls)."""
        rendered = 0
        for text in dict.fromkeys(texts):
            if self.key(text, voice, output) not in self._entries:
                await self.get(text, voice=voice, output=output)
                rendered += 1
        return rendered
