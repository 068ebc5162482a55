"""The sentence cache: a shared sentence said before comes from memory, the same audio; the budget holds;
sentences with caller data are not kept; the server's calls share it."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.nlu import NLUEngine
from callpilot.brains import build_dialogue
from callpilot.settings import Settings
from tests.heard_tts import Heard
from voice_gateway.call_log import CallLog
from voice_gateway.pipeline import CallPipeline, PipelineSettings, VoiceServices, load_services
from voice_gateway.simulated_caller import CallerScript, InMemoryTwilioLine, run_caller
from voice_gateway.testing import silence, speak_8k
from voice_gateway.transports import CallConnection
from voice_gateway.tts import AudioChunk, HibariTts, SentenceCache, SentenceStreamer

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def hibari() -> HibariTts:
    return HibariTts()


def get(cache: SentenceCache, text: str, voice: str | None = None) -> AudioChunk:
    audio = asyncio.run(cache.get(text, voice))
    assert audio is not None
    return audio


def test_the_second_time_a_sentence_comes_from_memory(hibari: HibariTts) -> None:
    engine = Heard(hibari)
    cache = SentenceCache(engine)
    first, second = get(cache, "Hello."), get(cache, "Hello.")
    assert first.pcm == second.pcm and first.engine == "hibari" and first.sample_rate == 24000
    assert engine.texts == ["Hello."] and (cache.hits, cache.misses) == (1, 1)
    assert cache.size_bytes == len(first.pcm) and cache.key("Hello.") in cache
    get(cache, "Hello.", "heart")  # a voice named is another key than the default (None)
    assert engine.texts == ["Hello.", "Hello."] and len(cache) == 2


def test_least_recently_used_sentences_leave_when_the_budget_is_full(hibari: HibariTts) -> None:
    engine = Heard(hibari)
    one = len(get(SentenceCache(hibari), "One.").pcm)
    cache = SentenceCache(engine, max_bytes=one * 2 + one // 2)  # room for about two short sentences
    for text in ("One.", "Two.", "One.", "Six.", "One.", "Two."):
        get(cache, text)
    assert engine.texts == ["One.", "Two.", "Six.", "Two."]  # "Two." was the oldest when "Six." came
    assert cache.size_bytes <= cache.max_bytes


def test_a_bad_budget_is_refused(hibari: HibariTts) -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        SentenceCache(hibari, max_bytes=0)
    with pytest.raises(ValueError, match="sentence cache speaks with hibari"):
        SentenceStreamer(Heard(hibari), cache=SentenceCache(hibari))


def test_calls_asking_at_once_share_one_synthesis(hibari: HibariTts) -> None:
    engine = Heard(hibari)
    cache = SentenceCache(engine)

    async def everyone() -> list[AudioChunk | None]:
        return list(await asyncio.gather(*(cache.get("Welcome.") for _ in range(5))))

    heard = asyncio.run(everyone())
    assert engine.texts == ["Welcome."] and len({a.pcm for a in heard if a}) == 1
    assert (cache.hits, cache.misses) == (4, 1)


def test_sentences_with_caller_data_are_synthesised_per_call_and_not_kept(hibari: HibariTts) -> None:
    engine = Heard(hibari)
    cache = SentenceCache(engine)
    streamer = SentenceStreamer(engine, cache=cache)
    reply = "Thanks for calling. Order 48213 is on its way. I've sent it to sam@example.org. Anything else?"

    async def one_call() -> list[str]:
        return [sentence.text async for sentence in streamer.stream(reply)]

    assert asyncio.run(one_call()) == asyncio.run(one_call()) == [
        "Thanks for calling.", "Order 48213 is on its way.", "I've sent it to sam@example.org.", "Anything else?"]
    said_twice = [text for text in engine.texts if engine.texts.count(text) == 2]
    assert said_twice == ["Order four eight two, one three is on its way.", "I've sent it to sam@example.org."] * 2
    assert engine.texts.count("Thanks for calling.") == 1 and engine.texts.count("Anything else?") == 1
    assert len(cache) == 2 and cache.hits == 2
    assert not cache.shares("Order 48213 is on its way.") and not cache.shares("x" * 401)


@pytest.fixture(scope="module")
def services(nlu_engine: NLUEngine) -> Iterator[VoiceServices]:
    dialogue = build_dialogue(Settings(data_dir=ROOT / "nlu_data"), nlu_engine)
    loaded = load_services(dialogue, tts_engine="hibari")
    yield loaded
    loaded.close()


def test_the_servers_calls_share_the_announcement_but_not_the_order_answer(
    services: VoiceServices, tmp_path: Path
) -> None:
    assert services.tts_cache is not None and services.tts_cache.engine is services.tts
    cache = services.tts_cache = SentenceCache(Heard(services.tts))  # type: ignore[arg-type]
    engine = cache.engine
    assert isinstance(engine, Heard)
    voice = dataclasses.replace(services, tts=engine, call_log=CallLog(None),
                                settings=PipelineSettings(record_calls=True, recordings_dir=tmp_path))
    question = silence(9) + speak_8k(services, "where is my order 48215")

    def new_call(line: CallConnection) -> CallPipeline:
        return CallPipeline(line, voice)

    async def two_calls() -> None:
        for _ in range(2):
            await run_caller(InMemoryTwilioLine(new_call), CallerScript(question + silence(6), realtime=False,
                                                                        speed=4.0))

    asyncio.run(two_calls())
    announcement = "This call may be recorded for quality and training purposes."
    assert engine.texts.count(announcement) == 1 and cache.key(announcement) in cache  # the second call: memory
    answers = [text for text in engine.texts if "four eight two, one five" in text]
    assert len(answers) == 2, engine.texts  # the answer with the order number: synthesised on each call
    assert all(cache.key(text) not in cache for text in answers) and cache.hits >= 1
