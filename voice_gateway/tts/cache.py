"""Sentences the bot says on every call (greetings, menus, common answers), synthesised once and shared.

Synthesising them again costs CPU that concurrent calls need for recognition and delays the first audio of a
turn. Whole sentences are kept (joined chunks) up to a byte budget, least recently used out; calls asking for a
sentence that is being synthesised wait for that synthesis instead of starting their own.

Only sentences without caller data are kept (`shares`): one with a digit (order, repair and phone numbers,
amounts, dates) or an "@" (an e-mail address), or longer than `max_text_chars`, is synthesised for its call and
forgotten. A sentence is only ever played for exactly the same text, so sharing never plays one caller's data
to another; the rule keeps one-off sentences from pushing out the common ones and keeps personal data out of
long-lived memory.
"""

from __future__ import annotations

import asyncio
import re
from collections import OrderedDict

from voice_gateway.tts.types import AudioChunk, TtsEngine

SentenceKey = tuple[str, str | None, str]  # engine, voice, the text the engine says
_CALLER_DATA = re.compile(r"[\d@]")


class SentenceCache:
    """Audio of shared sentences for one engine: same voice + text -> the same audio, from memory."""

    def __init__(self, engine: TtsEngine, *, max_bytes: int = 64 * 1024 * 1024, max_text_chars: int = 400) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        self.engine = engine
        self.max_bytes = max_bytes
        self.max_text_chars = max_text_chars  # longer texts are rarely said twice
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[SentenceKey, AudioChunk] = OrderedDict()
        self._bytes = 0
        self._rendering: dict[SentenceKey, asyncio.Task[AudioChunk | None]] = {}

    def shares(self, written: str) -> bool:
        """May this sentence (as the bot wrote it) be kept and shared between calls?"""
        return len(written) <= self.max_text_chars and not _CALLER_DATA.search(written)

    @property
    def size_bytes(self) -> int:
        """Bytes of audio held."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def key(self, text: str, voice: str | None = None) -> SentenceKey:
        return (self.engine.name, voice, text)

    def __contains__(self, key: SentenceKey) -> bool:
        return key in self._entries

    async def get(self, text: str, voice: str | None = None) -> AudioChunk | None:
        """The sentence's audio from memory, or synthesised now (None: the engine gave no audio)."""
        key = self.key(text, voice)
        if (cached := self._entries.get(key)) is not None:
            self.hits += 1
            self._entries.move_to_end(key)
            return cached
        task = self._rendering.get(key)
        if task is None:
            self.misses += 1
            task = asyncio.create_task(self._render(text, voice), name=f"sentence-{self.engine.name}")
            self._rendering[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        else:
            self.hits += 1  # another call is synthesising it right now: wait for that
        # Shielded: a caller hanging up (or barging in) mid-synthesis does not waste it for the next caller.
        return await asyncio.shield(task)

    async def _render(self, text: str, voice: str | None) -> AudioChunk | None:
        chunks = [chunk async for chunk in self.engine.synthesize(text, voice) if chunk.pcm]
        return AudioChunk.join(chunks) if chunks else None

    def _finished(self, key: SentenceKey, task: asyncio.Task[AudioChunk | None]) -> None:
        self._rendering.pop(key, None)
        if not task.cancelled() and task.exception() is None and (audio := task.result()) is not None:
            self._store(key, audio)

    def _store(self, key: SentenceKey, audio: AudioChunk) -> None:
        if len(audio.pcm) > self.max_bytes or key in self._entries:
            return
        self._entries[key] = audio
        self._bytes += len(audio.pcm)
        while self._bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= len(evicted.pcm)
