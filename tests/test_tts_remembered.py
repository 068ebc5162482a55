"""The remembering TTS: a sentence said before comes from memory, the same audio; the budget holds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from voice_gateway.tts import AudioChunk, HibariTts
from voice_gateway.tts.remembered import RememberingTts


def say(engine: RememberingTts, text: str, voice: str | None = None) -> AudioChunk:
    async def run() -> list[AudioChunk]:
        return [chunk async for chunk in engine.synthesize(text, voice)]

    return AudioChunk.join(asyncio.run(run()))


class CountingTts:
    """Counts what it was asked to speak; 100 ms of a constant tone per character."""

    name, voices, sample_rate = "counting", ("a", "b"), 8000

    def __init__(self) -> None:
        self.spoken: list[str] = []

    async def synthesize(self, text: str, voice: str | None = None) -> AsyncIterator[AudioChunk]:
        self.spoken.append(text)
        for _ in text:
            await asyncio.sleep(0)  # like a real engine, others run while it works
            yield AudioChunk(b"\x10\x00" * 800, 8000, "counting")


def test_the_second_time_a_sentence_comes_from_memory() -> None:
    inner = CountingTts()
    engine = RememberingTts(inner)
    first, second = say(engine, "Hello."), say(engine, "Hello.")
    assert first.pcm == second.pcm and len(first.pcm) == 6 * 1600
    assert inner.spoken == ["Hello."] and (engine.hits, engine.misses) == (1, 1)
    say(engine, "Hello.", "b")  # another voice is another sentence
    assert inner.spoken == ["Hello.", "Hello."]


def test_least_recently_used_sentences_leave_when_the_budget_is_full() -> None:
    inner = CountingTts()
    engine = RememberingTts(inner, max_bytes=2 * 1600 * 3)  # room for two three-letter sentences
    for text in ("one", "two", "one", "six", "one", "two"):
        say(engine, text)
    assert inner.spoken == ["one", "two", "six", "two"]  # "two" was the oldest when "six" came


def test_a_bad_budget_is_refused() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        RememberingTts(CountingTts(), max_bytes=0)


def test_hibari_through_memory_is_the_same_voice() -> None:
    engine = RememberingTts(HibariTts())
    assert (engine.name, engine.sample_rate) == ("hibari", 24000)
    first = say(engine, "Our stores are open every day.")
    assert say(engine, "Our stores are open every day.").pcm == first.pcm and engine.hits == 1


def test_calls_asking_at_once_share_one_synthesis() -> None:
    inner = CountingTts()
    engine = RememberingTts(inner)

    async def everyone() -> list[bytes]:
        async def one() -> bytes:
            return b"".join([chunk.pcm async for chunk in engine.synthesize("Welcome.")])

        return list(await asyncio.gather(*(one() for _ in range(5))))

    heard = asyncio.run(everyone())
    assert inner.spoken == ["Welcome."] and len(set(heard)) == 1 and (engine.hits, engine.misses) == (4, 1)
