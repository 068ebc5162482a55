"""NLU benchmark against published results: CLINC150 (in-scope accuracy, out-of-scope recall) and Banking77.

Everything goes through the engine the bot uses: `NLUEngine.train(..., held_out=...)` (fine-tuning,
calibration and the out-of-scope thresholds are chosen on the held-out split, never on a test split),
then `engine.parse_many` on the test split. Parse latency is `engine.parse(text)` one text at a time
(encoder, classifier, out-of-scope rule and entity extraction) on one thread (the encoder's ONNX graph
on one onnxruntime thread; torch pinned to one too), after a warm-up. Each data set runs in its own
process, so its peak RSS is its own. The demo model (`nlu_data/`) is timed from scratch, encoder
loading included, as `callpilot train` does it.

Run: .venv/bin/python bench/nlu_benchmark.py [--only clinc150|banking77|demo] [--out bench/results/nlu.json]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from nlu_data_sets import DataSet, banking77, clinc150  # noqa: E402

from bot.nlu.classifier import FALLBACK, OUT_OF_SCOPE  # noqa: E402
from bot.nlu.encoder import load_encoder  # noqa: E402
from bot.nlu.engine import NLUConfig, NLUEngine  # noqa: E402

LATENCY_TEXTS = 300
WARM_UP = 30


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def latency_ms(engine: NLUEngine, texts: list[str]) -> dict[str, float]:
    """p50/p95 of `engine.parse` on one thread, one text at a time, after a warm-up."""
    import torch

    threads = torch.get_num_threads()  # the torch runtime; the ONNX encoder always runs on one thread
    torch.set_num_threads(1)
    try:
        for text in texts[:WARM_UP]:
            engine.parse(text)
        times = []
        for text in texts:
            started = time.perf_counter()
            engine.parse(text)
            times.append((time.perf_counter() - started) * 1000)
    finally:
        torch.set_num_threads(threads)
    p50, p95 = (round(float(np.percentile(times, q)), 2) for q in (50, 95))
    return {"parse_ms_p50": p50, "parse_ms_p95": p95}


def train(data: DataSet) -> tuple[NLUEngine, float]:
    encoder = load_encoder(NLUConfig().encoder)
    started = time.perf_counter()
    engine = NLUEngine.train(data.train, set(), encoder=encoder, held_out=data.held_out)
    return engine, time.perf_counter() - started


def sample_texts(data: DataSet) -> list[str]:
    texts = [e.text for e in data.test]
    random.Random(0).shuffle(texts)
    return texts[:LATENCY_TEXTS]


def run_clinc150() -> dict[str, Any]:
    data = clinc150()
    engine, seconds = train(data)
    predicted = [r["intent"]["name"] for r in engine.parse_many([e.text for e in data.test])]
    truth = [e.intent for e in data.test]
    in_scope = [p == t for p, t in zip(predicted, truth, strict=True) if t != OUT_OF_SCOPE]
    caught = [p in (FALLBACK, OUT_OF_SCOPE) for p, t in zip(predicted, truth, strict=True) if t == OUT_OF_SCOPE]
    return {
        "in_scope_accuracy": round(sum(in_scope) / len(in_scope), 4),
        "oos_recall": round(sum(caught) / len(caught), 4),
        "in_scope_test": len(in_scope),
        "oos_test": len(caught),
        "train_seconds": round(seconds, 1),
        **latency_ms(engine, sample_texts(data)),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "thresholds": _thresholds(engine),
    }


def run_banking77() -> dict[str, Any]:
    data = banking77()
    engine, seconds = train(data)
    predicted = [r["intent"]["name"] for r in engine.parse_many([e.text for e in data.test])]
    right = [p == e.intent for p, e in zip(predicted, data.test, strict=True)]
    return {
        "accuracy": round(sum(right) / len(right), 4),
        "fallback_share": round(predicted.count(FALLBACK) / len(predicted), 4),
        "test": len(right),
        "train_seconds": round(seconds, 1),
        **latency_ms(engine, sample_texts(data)),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "thresholds": _thresholds(engine),
    }


def run_demo() -> dict[str, Any]:
    from bot.training_data import load_project

    project = load_project(ROOT / "nlu_data")
    started = time.perf_counter()
    engine = NLUEngine.train(project.nlu, set(project.domain.entities))
    seconds = time.perf_counter() - started
    gibberish = ["flarp gnn vrrk", "blorp zzkt qwx"]
    return {
        "train_seconds": round(seconds, 1),
        "examples": len(project.nlu.examples),
        "gibberish": {text: engine.parse(text)["intent"]["name"] for text in gibberish},
        "thresholds": _thresholds(engine),
    }


def _thresholds(engine: NLUEngine) -> dict[str, float]:
    info = engine.info()
    return {k: info[k] for k in ("fallback_threshold", "similarity_threshold", "tuned_layers")}


def machine() -> dict[str, Any]:
    import torch

    return {
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
        "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
    }


RUNS = {"clinc150": run_clinc150, "banking77": run_banking77, "demo": run_demo}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=sorted(RUNS), action="append", help="run only this (repeatable)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "nlu.json")
    args = parser.parse_args()
    results: dict[str, Any] = json.loads(args.out.read_text()) if args.only and args.out.exists() else {}
    results["machine"] = machine()
    for name in args.only or list(RUNS):
        print(f"{name} ...", file=sys.stderr, flush=True)
        load_at_start = [round(v, 2) for v in os.getloadavg()]
        # A fresh process per data set: its own peak RSS, no memory of the previous run.
        with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
            results[name] = pool.submit(RUNS[name]).result()
        # Timings on a shared machine depend on its load: keep it with each part (they may run at different times).
        results[name]["load_average"] = {"start": load_at_start, "end": [round(v, 2) for v in os.getloadavg()]}
        print(json.dumps({name: results[name]}, indent=2), file=sys.stderr, flush=True)
    results["date"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
