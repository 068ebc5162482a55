"""A TTS engine that remembers the sentences it has spoken: a contact centre's bot says the same ones all day.

Greetings, menus and answers to common questions repeat on every call; synthesising them again costs CPU
that concurrent calls need for recognition, and delays the first audio of a turn. Sentences are kept whole
(joined chunks) up to a byte budget, least recently used out; a miss streams as the engine produces it, and
calls asking for a sentence that is being synthesised wait for it rather than synthesise it again.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator

from voice_gateway.tts.types import AudioChunk, TtsEngine


class RememberingTts:
    """Wraps an engine; same voice + text -> the same audio, straight from memory."""

    def __init__(self, engine: TtsEngine, *, max_bytes: int = 64 * 1024 * 1024, max_text_chars: int = 400) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        self.engine = engine
        self.max_bytes = max_bytes
        self.max_text_chars = max_text_chars  # longer texts are rarely said twice
        self.hits = 0
        self.misses = 0
        self._spoken: OrderedDict[tuple[str | None, str], AudioChunk] = OrderedDict()
        self._rendering: dict[tuple[str | None, str], asyncio.Future[None]] = {}  # being synthesised now
        self._bytes = 0

    @property
    def name(self) -> str:
        return self.engine.name

    @property
    def voices(self) -> tuple[str, ...]:
        return self.engine.voices

    @property
    def sample_rate(self) -> int:
        return self.engine.sample_rate

    async def synthesize(self, text: str, voice: str | None = None) -> AsyncIterator[AudioChunk]:
        key = (voice, text)
        rendering = self._rendering.get(key)
        if rendering is not None:  # another call is saying it right now: wait for it instead of competing
            await asyncio.wait([rendering])
        remembered = self._spoken.get(key)
        if remembered is not None:
            self.hits += 1
            self._spoken.move_to_end(key)
            yield remembered
            return
        self.misses += 1
        done = asyncio.get_running_loop().create_future()
        self._rendering.setdefault(key, done)
        chunks: list[AudioChunk] = []
        try:
            async for chunk in self.engine.synthesize(text, voice):
                chunks.append(chunk)
                yield chunk
            if chunks and len(text) <= self.max_text_chars:
                self._remember(key, AudioChunk.join(chunks))
        finally:
            if self._rendering.get(key) is done:
                del self._rendering[key]
            done.set_result(None)

    def _remember(self, key: tuple[str | None, str], audio: AudioChunk) -> None:
        if len(audio.pcm) > self.max_bytes or key in self._spoken:
            return
        self._spoken[key] = audio
        self._bytes += len(audio.pcm)
        while self._bytes > self.max_bytes:
            _, dropped = self._spoken.popitem(last=False)
            self._bytes -= len(dropped.pcm)
