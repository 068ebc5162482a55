"""How much of the encoder to fine-tune, and how: one variant of the NLU engine's tuning per run, on CLINC150 or
Banking77, for the search recorded in `bench/README.md` ("Towards the issue-13 NLU targets").

The engine's own `tune_encoder` and `train_classifier` (cosine head at the class means, AdamW with warm-up and
linear decay, logistic regression, temperature, the out-of-scope rule chosen on the held-out split), with the
knobs of `TuningConfig` made arguments. The token states below the tuned layers are computed once per data set
and layer count and cached (`--cache`, ~300 MB per data set), so a variant costs its tuning alone. Reports
accuracy on the held-out split (what a choice may be made on) and on the test split (what is reported), with
and without the out-of-scope rule; appends one JSON line to `--out`.

Run: .venv/bin/python bench/nlu_tuning_sweep.py --data banking77 --layers 3 [--epochs 2] [--seed 0] ...
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from nlu_data_sets import banking77, clinc150  # noqa: E402

from bot.nlu.classifier import FALLBACK, OUT_OF_SCOPE, ClassifierConfig, IntentClassifier, train_classifier  # noqa: E402
from bot.nlu.encoder import TransformerEncoder, base_encoder, load_encoder  # noqa: E402
from bot.nlu.engine import NLUConfig  # noqa: E402
from bot.nlu.tuning import TuningConfig, tune_encoder  # noqa: E402


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", choices=("banking77", "clinc150"), default="banking77")
    parser.add_argument("--layers", type=int, default=2, help="top layers tuned (6: the whole encoder)")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--scale", type=float, default=20.0)
    parser.add_argument("--smoothing", type=float, default=0.0, help="label smoothing of the tuning loss")
    parser.add_argument("--c", type=float, default=0.2, help="logistic regression's C")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/nlu_sweep"))
    parser.add_argument("--out", type=Path, default=Path("/tmp/nlu_sweep/results.jsonl"))
    return parser.parse_args()


def score(classifier: IntentClassifier, vectors: Any, truth_list: list[str]) -> dict[str, float]:
    probs = classifier.predict_proba(vectors)
    kept = classifier.accepts(probs, classifier.similarity(vectors))
    raw = np.array(classifier.classes)[probs.argmax(1)]
    predicted = np.where(kept, raw, FALLBACK)
    truth = np.array(truth_list)
    in_scope = truth != OUT_OF_SCOPE
    out = {"accuracy": float((predicted[in_scope] == truth[in_scope]).mean()),
           "accuracy_without_oos_rule": float((raw[in_scope] == truth[in_scope]).mean()),
           "fallback_share": float((predicted == FALLBACK).mean())}
    if (~in_scope).any():
        out["oos_recall"] = float(np.isin(predicted[~in_scope], [FALLBACK, OUT_OF_SCOPE]).mean())
    return {key: round(value, 4) for key, value in out.items()}


def main() -> None:
    import torch

    args = arguments()
    data = banking77() if args.data == "banking77" else clinc150()
    encoder = base_encoder(load_encoder(NLUConfig().encoder))
    assert isinstance(encoder, TransformerEncoder)
    start = encoder.depth - args.layers
    splits = {"train": data.train.examples, "held_out": data.held_out, "test": data.test}
    labels = {name: [e.intent for e in examples] for name, examples in splits.items()}
    cache = args.cache / f"{args.data}_below_layer_{start}.pt"
    if cache.exists():
        states = torch.load(cache)
    else:
        states = {name: encoder.hidden_states([e.text for e in examples], start) for name, examples in splits.items()}
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save(states, cache)
    started = time.perf_counter()
    config = TuningConfig(layers=args.layers, epochs=args.epochs, batch_size=args.batch, learning_rate=args.lr,
                          scale=args.scale, seed=args.seed, label_smoothing=args.smoothing)
    texts = [e.text for e in data.train.examples]
    tuned, train_vectors = tune_encoder(encoder, texts, labels["train"], config, states=states["train"])
    tune_s = time.perf_counter() - started
    vectors = {"train": train_vectors, **{name: tuned.pool(states[name], start=start) for name in ("held_out", "test")}}
    classifier = train_classifier(vectors["train"], labels["train"], ClassifierConfig(c=args.c),
                                  held_out=(vectors["held_out"], labels["held_out"]), fold_in_held_out=False)
    result = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "tune_seconds": round(tune_s, 1), "load_average": [round(x, 2) for x in os.getloadavg()],
              **{name: score(classifier, vectors[name], labels[name]) for name in ("held_out", "test")}}
    print(json.dumps(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("a") as handle:
        handle.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
