"""Spoken identifiers: does the server get the order or repair number the caller read out, digit for digit?

Each run draws 30 identifiers (order numbers 4xxxx-4xxxxxxx, repair numbers R1xxxxx, as the demo data's id
patterns want) at random with its own seed, each in a carrier sentence a caller would use ("my order number is
...", "where is my order ...", the digits alone, ...), read digit by digit ("oh" for some zeros, "double"
never) by one of three voices (piper joe, hibari, espeak-ng) in turn, through 8 kHz G.711 mu-law and back.
The recogniser is the server's (Whisper tiny.en on the short window, in this process) and the text then goes
through the server's transcript repair (`TranscriptFixer` with the NLU data's id patterns), which is what the
NLU reads. An identifier counts as right only if one run of digits in that text is exactly it (or the whole
utterance's digits, read as numerals and number words, are exactly it).

Both with and without the digit pass (`voice_gateway/asr/digit_pass.py`); three runs (seeds 1-3), median and
spread; decode time per utterance.

Run: .venv/bin/python bench/digits_benchmark.py [--runs 3] [--per-run 30] [--out bench/results/digits.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from voice_benchmark import synthesise  # noqa: E402

from bot.dialogue.validation import spoken_digits  # noqa: E402
from callpilot.voice import id_patterns  # noqa: E402
from voice_gateway.asr.short_window import WindowPolicy  # noqa: E402
from voice_gateway.asr.whisper_engine import WhisperOptions, WhisperTranscriber, tiny_en_dir  # noqa: E402
from voice_gateway.pipeline.transcript_fixes import TranscriptFixer  # noqa: E402
from voice_gateway.testing import heard_by_recogniser  # noqa: E402

VOICES = ("piper", "hibari", "espeak")
WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ORDER_CARRIERS = ("{}", "my order number is {}", "where is my order {}", "can you check order {} please",
                  "I'd like to cancel order {}", "it's {}")
REPAIR_CARRIERS = ("the repair number is R {}", "what is the status of repair R {}", "R {}")


def draw(rng: random.Random) -> tuple[str, str]:
    """(the sentence a caller says, the identifier the server must get)."""
    if rng.random() < 0.75:
        digits = "4" + "".join(rng.choice("0123456789") for _ in range(rng.choice((4, 4, 5, 6, 7))))
        carrier = rng.choice(ORDER_CARRIERS)
    else:
        digits = "1" + "".join(rng.choice("0123456789") for _ in range(5))
        carrier = rng.choice(REPAIR_CARRIERS)
    spoken = " ".join("oh" if d == "0" and rng.random() < 0.3 else WORDS[int(d)] for d in digits)
    return carrier.format(spoken), digits


def heard_right(text: str, digits: str) -> bool:
    return digits in re.findall(r"\d+", text) or spoken_digits(text) == digits


def run(seed: int, per_run: int, recognisers: dict[str, WhisperTranscriber], fixer: TranscriptFixer) -> dict[str, Any]:
    rng = random.Random(seed)
    said = [(*draw(rng), VOICES[n % len(VOICES)]) for n in range(per_run)]
    audio = [heard_by_recogniser(synthesise(sentence, voice)) for sentence, _digits, voice in said]
    out: dict[str, dict[str, Any]] = {}
    for name, recogniser in recognisers.items():
        right: dict[str, list[bool]] = {voice: [] for voice in VOICES}
        times, misses = [], []
        for (sentence, digits, voice), samples in zip(said, audio, strict=True):
            started = time.perf_counter()
            text = fixer.fix(recogniser.transcribe(samples).text)
            times.append((time.perf_counter() - started) * 1000)
            right[voice].append(heard_right(text, digits))
            if not right[voice][-1]:
                misses.append([voice, sentence, digits, text])
        everything = [r for rights in right.values() for r in rights]
        out[name] = {
            "accuracy": round(sum(everything) / len(everything), 3),
            "by_voice": {voice: round(sum(r) / len(r), 3) for voice, r in right.items() if r},
            "decode_ms_mean": round(statistics.fmean(times), 1),
            "misses": misses,
        }
    return out


def median_spread(values: list[float]) -> tuple[float, list[float]]:
    return round(statistics.median(values), 3), [round(min(values), 3), round(max(values), 3)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--per-run", type=int, default=30)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "digits.json")
    args = parser.parse_args()
    load = os.getloadavg()
    recognisers = {
        name: WhisperTranscriber.from_dir(tiny_en_dir(), WhisperOptions(window=WindowPolicy(), digit_pass=on))
        for name, on in (("digit_pass", True), ("first_pass_only", False))
    }
    fixer = TranscriptFixer(id_patterns(ROOT / "nlu_data"))
    runs = [run(seed, args.per_run, recognisers, fixer) for seed in range(1, args.runs + 1)]
    summary: dict[str, dict[str, Any]] = {}
    for name in recognisers:
        accuracy, spread = median_spread([r[name]["accuracy"] for r in runs])
        decode, decode_spread = median_spread([r[name]["decode_ms_mean"] for r in runs])
        summary[name] = {
            "accuracy": accuracy, "accuracy_spread": spread,
            "by_voice": {voice: median_spread([r[name]["by_voice"][voice] for r in runs])[0] for voice in VOICES},
            "decode_ms_mean": decode, "decode_ms_mean_spread": decode_spread,
        }
        print(name, json.dumps(summary[name]), flush=True)
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpu_count": os.cpu_count(), "load_average_at_start": [round(x, 2) for x in load]},
        "identifiers_per_run": args.per_run, "runs": args.runs, "recogniser": "whisper-tiny.en, short window",
        "summary": summary,
        "misses": {name: [m for r in runs for m in r[name]["misses"]] for name in recognisers},
    }
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
