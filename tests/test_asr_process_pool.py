"""Whisper tiny.en in a worker process hears what it hears in this process (same model, greedy decoding)."""

from __future__ import annotations

import asyncio

import pytest

from voice_gateway.asr.audio import pcm16_to_float
from voice_gateway.asr.process_pool import ProcessTranscriber
from voice_gateway.asr.short_window import WindowPolicy
from voice_gateway.asr.whisper_engine import WhisperOptions, WhisperTranscriber, tiny_en_dir
from voice_gateway.tts import HibariTts
from voice_gateway.tts.formats import resample_pcm16


def test_a_worker_process_transcribes_like_this_process() -> None:
    async def render() -> bytes:
        chunks = [chunk async for chunk in HibariTts().synthesize("where is my order")]
        return resample_pcm16(b"".join(c.pcm for c in chunks), chunks[0].sample_rate, 16000)

    samples = pcm16_to_float(asyncio.run(render()))
    options = WhisperOptions(window=WindowPolicy())  # the short-window path, as the server runs it
    here = WhisperTranscriber.from_dir(tiny_en_dir(), options).transcribe(samples)
    pool = ProcessTranscriber(tiny_en_dir(), options, processes=1)
    try:
        there = pool.transcribe(samples)
    finally:
        pool.close()
    assert "order" in there.text.lower()
    assert there.text == here.text and there.confidence == pytest.approx(here.confidence, abs=1e-3)


def test_no_worker_processes_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ProcessTranscriber(tiny_en_dir(), WhisperOptions(), processes=0)
