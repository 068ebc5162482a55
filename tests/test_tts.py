"""Speech synthesis with the real engines: audio that is long enough, loud enough, streamed and cached."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Iterator
from typing import TypeVar

import numpy as np
import pytest

from tests.heard_tts import Heard
from voice_gateway import memory
from voice_gateway.audio import rms, ulaw_decode
from voice_gateway.tts import (
    TWILIO,
    AudioChunk,
    BreakerState,
    CircuitBreaker,
    CircuitOpen,
    EdgeTts,
    EngineUnavailable,
    EspeakTts,
    FallbackLink,
    FallbackTts,
    HibariTts,
    OutputFormat,
    PiperTts,
    SentenceStreamer,
    TtsEngine,
    default_chain,
    encode,
    split_sentences,
)
from voice_gateway.tts.edge import decode_mp3

T = TypeVar("T")


def run(awaitable: Awaitable[T]) -> T:
    return asyncio.run(awaitable)  # type: ignore[arg-type]


async def speak(engine: TtsEngine, text: str, voice: str | None = None) -> list[AudioChunk]:
    return [chunk async for chunk in engine.synthesize(text, voice)]


def assert_speech(chunk: AudioChunk, words: int, rate: int) -> None:
    """About 2.5 words a second (1.2 to 5 allowed), clearly not silence."""
    assert chunk.sample_rate == rate
    assert words / 5.0 < chunk.duration_s < words / 1.2 + 0.8, chunk.duration_s
    assert rms(chunk.pcm) > 500, rms(chunk.pcm)


@pytest.fixture(scope="module")
def hibari() -> HibariTts:
    return HibariTts()


@pytest.fixture(scope="module")
def piper() -> PiperTts:
    return PiperTts()


@pytest.fixture(scope="module")
def espeak() -> EspeakTts:
    return EspeakTts()


@pytest.fixture
def black_hole() -> Iterator[tuple[str, int]]:
    """A loopback port whose accept queue is full, so new connections hang like a dropped SYN."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    address = server.getsockname()
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(address)
        fillers.append(filler)
    time.sleep(0.05)
    yield address
    for sock in [*fillers, server]:
        sock.close()


@pytest.fixture
def refused() -> tuple[str, int]:
    """A loopback port with nothing listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        host, port = sock.getsockname()
        return str(host), int(port)


# Engines


def test_piper_speaks_a_sentence_at_22050_hz(piper: PiperTts) -> None:
    chunks = run(speak(piper, "Your order has shipped and will arrive on Thursday."))
    assert piper.voices == ("en_US-joe-medium",)
    assert_speech(AudioChunk.join(chunks), words=9, rate=22050)
    assert {c.engine for c in chunks} == {"piper"}


def test_hibari_speaks_a_sentence_at_24000_hz_with_the_bundled_voice(hibari: HibariTts) -> None:
    chunks = run(speak(hibari, "Your order has shipped and will arrive on Thursday."))
    assert hibari.voices[0] == "heart"
    assert_speech(AudioChunk.join(chunks), words=9, rate=24000)


def test_voices_keep_no_onnx_arena_and_give_a_sentence_s_memory_back(
    piper: PiperTts, hibari: HibariTts, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A voice's tensors grow with the sentence; an arena would keep the longest sentence's size for ever."""
    sessions = [piper._voice.session, hibari._model(hibari.voices[0]).sess]
    assert [s.get_session_options().enable_cpu_mem_arena for s in sessions] == [False, False]
    monkeypatch.setattr(memory, "TRIM_EVERY_S", 0.0)
    for engine in (piper, hibari):
        before = memory.release_freed_memory.trims
        run(speak(engine, "Hello there. How can I help?"))
        assert memory.release_freed_memory.trims == before + 2, engine.name  # after each sentence


def test_engines_yield_one_chunk_per_sentence(piper: PiperTts, hibari: HibariTts) -> None:
    for engine in (piper, hibari):
        chunks = run(speak(engine, "Hello there. How can I help?"))
        assert len(chunks) == 2, engine.name


def test_espeak_speaks_english_and_mandarin(espeak: EspeakTts) -> None:
    english = AudioChunk.join(run(speak(espeak, "Please hold while I check your order.", "en-us")))
    assert_speech(english, words=7, rate=22050)
    mandarin = AudioChunk.join(run(speak(espeak, "您好，请稍等。", "cmn")))
    assert mandarin.sample_rate == 22050
    assert 0.8 < mandarin.duration_s < 5.0 and rms(mandarin.pcm) > 500


def test_unknown_voice_is_refused(hibari: HibariTts) -> None:
    with pytest.raises(ValueError, match="unknown voice"):
        run(speak(hibari, "Hello.", "nobody"))


def test_edge_mp3_decoding_gives_24khz_pcm() -> None:
    lameenc = pytest.importorskip("lameenc")
    tone = (np.sin(2 * np.pi * 440 * np.arange(24000) / 24000) * 8000).astype("<i2")
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(48)
    encoder.set_in_sample_rate(24000)
    encoder.set_channels(1)
    mp3 = bytes(encoder.encode(tone.tobytes()) + encoder.flush())
    decoded = AudioChunk(decode_mp3(mp3), 24000)
    assert 0.95 < decoded.duration_s < 1.15
    assert 4000 < rms(decoded.pcm) < 7000
    with pytest.raises(EngineUnavailable):
        decode_mp3(b"not an mp3 at all" * 10)


# Sentences and streaming


def test_split_sentences_keeps_titles_and_numbers_together() -> None:
    text = "Dr. Smith will call you at 3.30 pm. Your order No. 5 ships today! Anything else?\nBye"
    assert split_sentences(text) == [
        "Dr. Smith will call you at 3.30 pm.", "Your order No. 5 ships today!", "Anything else?", "Bye",
    ]
    assert split_sentences("您好。请问有什么可以帮您？") == ["您好。", "请问有什么可以帮您？"]
    assert split_sentences("  ") == []


def test_first_sentence_is_yielded_before_the_last_is_synthesised(piper: PiperTts) -> None:
    reply = "Hello. I found your order. It left on Monday."
    recording = Heard(piper)

    async def consume() -> list[tuple[int, float]]:
        return [(s.index, time.perf_counter()) async for s in SentenceStreamer(recording).stream(reply)]

    received = run(consume())
    assert [index for index, _ in received] == [0, 1, 2]
    last_done = max(t for kind, text, t in recording.events if kind == "end" and text.startswith("It left"))
    assert received[0][1] < last_done


def test_closing_the_stream_stops_synthesis(hibari: HibariTts) -> None:
    recording = Heard(hibari)

    async def first_only() -> str:
        stream = SentenceStreamer(recording).stream("One. Two. Three. Four. Five.")
        first = await anext(stream)
        await stream.aclose()  # type: ignore[attr-defined]
        return first.text

    assert run(first_only()) == "One."
    started = [text for kind, text, _ in recording.events if kind == "start"]
    assert "Five." not in started and len(started) <= 3


# edge-tts and the fallback chain


def test_edge_fails_within_300ms_then_is_skipped_until_the_cooldown(black_hole: tuple[str, int]) -> None:
    now = [1000.0]
    breaker = CircuitBreaker(cooldown_s=30.0, clock=lambda: now[0])
    edge = EdgeTts(endpoint=black_hole, breaker=breaker)

    def attempt() -> tuple[type[Exception], float]:
        start = time.perf_counter()
        with pytest.raises(EngineUnavailable) as caught:
            run(speak(edge, "Hello."))
        return caught.type, time.perf_counter() - start

    kind, first = attempt()
    assert kind is EngineUnavailable and 0.2 < first < 0.3 and breaker.state is BreakerState.OPEN
    kind, second = attempt()
    assert kind is CircuitOpen and second < 0.02
    now[0] += 31.0  # cool-down over: one trial call, which fails again and reopens the breaker
    kind, third = attempt()
    assert kind is EngineUnavailable and third > 0.2 and breaker.failures == 2


def test_edge_refused_connection_fails_at_once(refused: tuple[str, int]) -> None:
    edge = EdgeTts(endpoint=refused)
    start = time.perf_counter()
    with pytest.raises(EngineUnavailable, match="cannot reach"):
        run(speak(edge, "Hello."))
    assert time.perf_counter() - start < 0.1


def test_fallback_chain_skips_unreachable_edge_and_speaks_offline(
    black_hole: tuple[str, int], hibari: HibariTts, espeak: EspeakTts
) -> None:
    offline = Heard(hibari)
    chain = default_chain(offline=offline, espeak=espeak, edge_endpoint=black_hole)

    def time_spent_on_edge() -> tuple[AudioChunk, float]:
        async def go() -> tuple[AudioChunk, float]:
            began = time.perf_counter()
            chunk = await anext(chain.synthesize("Thanks for calling."))
            started = next(t for kind, _, t in offline.events if kind == "start")
            return chunk, started - began

        offline.events.clear()
        return run(go())

    chunk, first = time_spent_on_edge()
    assert chunk.engine == "hibari" and rms(chunk.pcm) > 500
    assert first < 0.3
    chunk, second = time_spent_on_edge()
    assert chunk.engine == "hibari" and second < 0.02


def test_fallback_chain_uses_espeak_for_mandarin_and_resamples_to_the_chain_rate(
    refused: tuple[str, int], hibari: HibariTts, espeak: EspeakTts
) -> None:
    chain = default_chain(offline=hibari, espeak=espeak, edge_endpoint=refused)
    chunks = run(speak(chain, "您好，请稍等。"))
    assert {c.engine for c in chunks} == {"espeak"} and {c.sample_rate for c in chunks} == {24000}
    assert rms(AudioChunk.join(chunks).pcm) > 500


def test_fallback_chain_with_no_working_engine_says_why(refused: tuple[str, int]) -> None:
    chain = FallbackTts([FallbackLink(EdgeTts(endpoint=refused), "en-US-AndrewNeural")])
    with pytest.raises(EngineUnavailable, match="cannot reach"):
        run(speak(chain, "Hello."))


# Transport formats (the sentence cache: tests/test_tts_cache.py)


def test_telephone_format_is_8khz_mulaw_of_the_same_speech(piper: PiperTts) -> None:
    speech = AudioChunk.join(run(speak(piper, "Goodbye.")))
    ulaw = encode(speech, TWILIO)
    assert len(ulaw) == pytest.approx(speech.duration_s * 8000, abs=2)
    back = AudioChunk(ulaw_decode(ulaw), 8000)
    assert rms(back.pcm) == pytest.approx(rms(speech.pcm), rel=0.1)
    pcm16k = encode(speech, OutputFormat(sample_rate=16000))
    assert len(pcm16k) == pytest.approx(speech.duration_s * 16000 * 2, abs=4)
