"""Speak a bot reply sentence by sentence: the first sentence plays while the rest are synthesised.

Every sentence goes through `spoken_text.speakable` first (identifiers digit by digit, amounts and dates in
words), so every engine says the same words; sentences without caller data come from the `SentenceCache`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from voice_gateway.tts.cache import SentenceCache
from voice_gateway.tts.fallback import language_of
from voice_gateway.tts.spoken_text import languages, speakable
from voice_gateway.tts.types import AudioChunk, TtsEngine

# A sentence ends at . ! ? … followed by space, or at Chinese end punctuation (no space follows it).
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"”’)\]]*\s+|(?<=[。！？；])\s*")
_NOT_AN_END = re.compile(r"(?:\b(?:Mr|Mrs|Ms|Dr|St|No|Nr|vs|etc|e\.g|i\.e)|\b[A-Z])\.$")
_NEWLINES = re.compile(r"\s*\n\s*")


def split_sentences(text: str) -> list[str]:
    """Sentences of a reply; keeps "Dr. Smith", "No. 5" and initials together, splits at line breaks."""
    sentences: list[str] = []
    for line in _NEWLINES.split(text.strip()):
        start = 0
        for match in _SENTENCE_END.finditer(line):
            candidate = line[start : match.start()].strip()
            if not candidate or _NOT_AN_END.search(candidate):
                continue
            sentences.append(candidate)
            start = match.end()
        rest = line[start:].strip()
        if rest:
            sentences.append(rest)
    return sentences


@dataclass(frozen=True)
class SentenceAudio:
    """One sentence of a reply (as written, for transcripts), the words the engine said, and all of its audio."""

    index: int
    text: str
    audio: AudioChunk
    spoken: str = ""


def spoken_form(sentence: str, id_patterns: Sequence[str] = ()) -> str:
    """The words an engine says for a sentence (unchanged in a language without a `spoken_text` reader)."""
    language = language_of(sentence)
    return speakable(sentence, language=language, id_patterns=id_patterns) if language in languages() else sentence


@dataclass(frozen=True)
class _Failed:
    error: BaseException


class SentenceStreamer:
    """Synthesises a reply's sentences in order, `lookahead` ahead of the consumer, and yields each when done."""

    def __init__(self, engine: TtsEngine, *, voice: str | None = None, lookahead: int = 1,
                 id_patterns: Sequence[str] = (), cache: SentenceCache | None = None) -> None:
        if lookahead < 1:
            raise ValueError(f"lookahead must be at least 1, got {lookahead}")
        if cache is not None and cache.engine is not engine:
            raise ValueError(f"the sentence cache speaks with {cache.engine.name}, not {engine.name}")
        self.engine = engine
        self.voice = voice
        self.lookahead = lookahead
        self.id_patterns = tuple(id_patterns)  # the NLU data's identifier regexes (order numbers ...)
        self.cache = cache  # sentences without caller data, shared between calls

    async def _synthesize(self, text: str, spoken: str) -> list[AudioChunk]:
        if self.cache is not None and self.cache.shares(text):
            audio = await self.cache.get(spoken, self.voice)
            return [audio] if audio is not None else []
        return [chunk async for chunk in self.engine.synthesize(spoken, self.voice) if chunk.pcm]

    async def _speak(self, index: int, text: str) -> SentenceAudio | None:
        spoken = spoken_form(text, self.id_patterns)
        chunks = await self._synthesize(text, spoken)
        if not chunks:
            return None
        if len({chunk.sample_rate for chunk in chunks}) > 1:
            raise ValueError(f"{self.engine.name} changed sample rate within one sentence")
        return SentenceAudio(index=index, text=text, audio=AudioChunk.join(chunks), spoken=spoken)

    async def _produce(self, sentences: list[str], queue: asyncio.Queue[SentenceAudio | _Failed | None]) -> None:
        try:
            for index, text in enumerate(sentences):
                spoken = await self._speak(index, text)
                if spoken is not None:
                    await queue.put(spoken)
        except Exception as error:
            await queue.put(_Failed(error))
            return
        await queue.put(None)

    async def stream(self, reply: str) -> AsyncIterator[SentenceAudio]:
        """Each sentence's audio as soon as it is synthesised; closing the iterator (barge-in) stops synthesis."""
        sentences = split_sentences(reply)
        if not sentences:
            return
        queue: asyncio.Queue[SentenceAudio | _Failed | None] = asyncio.Queue(maxsize=self.lookahead)
        producer = asyncio.create_task(self._produce(sentences, queue), name=f"tts-{self.engine.name}")
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, _Failed):
                    raise item.error
                yield item
        finally:
            producer.cancel()
            try:
                await producer
            except asyncio.CancelledError:
                # Re-raise only if we ourselves are being cancelled, not the producer we just stopped.
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
