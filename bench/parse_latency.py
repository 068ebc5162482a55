"""Parse latency A/B: the same model with its encoder on torch and on its exported ONNX graph.

Trains the demo model (`nlu_data/`, ~25 s) once with the torch runtime, exports its encoder (tuned layers
included) to ONNX, and times `engine.parse(text)` for both variants on one fixed text set, alternating
the variants text by text (and which goes first), on one thread. On a shared machine the absolute
numbers drift with the load; the ratio between variants measured side by side is what to trust.
`--saved` times the active saved model in `models/` instead (no training, no A/B).

Texts: 300 shuffled CLINC150 test queries (the set `nlu_benchmark.py` times), or the demo examples when
the CLINC150 files are missing. The demo classifier is smaller than CLINC150's (1.2k vs 15k neighbours
for the out-of-scope rule), so the full benchmark's parse times are a little higher.

Run: .venv/bin/python bench/parse_latency.py [--rounds 3] [--saved] [--out bench/results/nlu.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bot.nlu.encoder import TransformerEncoder  # noqa: E402
from bot.nlu.engine import NLUConfig, NLUEngine  # noqa: E402
from bot.nlu.onnx_encoder import export_onnx  # noqa: E402
from bot.training_data import load_project  # noqa: E402

TEXTS = 300
WARM_UP = 30


def texts() -> list[str]:
    try:
        from nlu_data_sets import clinc150

        pool = [e.text for e in clinc150().test]
    except FileNotFoundError:
        pool = [e.text for e in load_project(ROOT / "nlu_data").nlu.examples]
    random.Random(0).shuffle(pool)
    return pool[:TEXTS]


def variants() -> dict[str, NLUEngine]:
    project = load_project(ROOT / "nlu_data")
    started = time.perf_counter()
    torch_engine = NLUEngine.train(
        project.nlu, set(project.domain.entities), config=NLUConfig(runtime="torch")
    )
    print(f"trained the demo model in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    assert isinstance(torch_engine.encoder, TransformerEncoder)
    onnx_engine = dataclasses.replace(torch_engine, encoder=export_onnx(torch_engine.encoder))
    return {"torch": torch_engine, "onnx": onnx_engine}


def saved() -> dict[str, NLUEngine]:
    from bot.nlu import load

    engine = load(ROOT / "models")
    return {f"saved {engine.model_id} ({engine.info()['runtime']})": engine}


def measure(engines: dict[str, NLUEngine], sample: list[str], rounds: int) -> dict[str, dict[str, float]]:
    """p50/p95 ms per variant; variants alternate text by text, the first one rotating."""
    parses: list[tuple[str, Callable[[str], Any]]] = [(name, e.parse) for name, e in engines.items()]
    for text in sample[:WARM_UP]:
        for _, parse in parses:
            parse(text)
    times: dict[str, list[float]] = {name: [] for name in engines}
    for round_ in range(rounds):
        for i, text in enumerate(sample):
            shift = (i + round_) % len(parses)
            for name, parse in parses[shift:] + parses[:shift]:
                started = time.perf_counter()
                parse(text)
                times[name].append((time.perf_counter() - started) * 1000)
    return {name: _percentiles(t) for name, t in times.items()}


def _percentiles(times: list[float]) -> dict[str, float]:
    return {f"parse_ms_p{q}": round(float(np.percentile(times, q)), 2) for q in (50, 95)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="passes over the text set")
    parser.add_argument("--saved", action="store_true", help="time the active model in models/ (no training)")
    parser.add_argument("--out", type=Path, help="merge the numbers into this JSON file under 'parse_latency'")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    engines = saved() if args.saved else variants()
    result: dict[str, Any] = {
        "variants": measure(engines, texts(), args.rounds),
        "texts": TEXTS,
        "rounds": args.rounds,
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }
    if set(result["variants"]) == {"torch", "onnx"}:
        onnx, base = result["variants"]["onnx"], result["variants"]["torch"]
        result["onnx_over_torch"] = {k: round(onnx[k] / base[k], 3) for k in base}
    print(json.dumps(result, indent=2))
    if args.out:
        existing = json.loads(args.out.read_text()) if args.out.exists() else {}
        existing["parse_latency"] = result
        args.out.write_text(json.dumps(existing, indent=2) + "\n")


if __name__ == "__main__":
    main()
