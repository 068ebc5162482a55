"""`callpilot test nlu`: held-out or cross-validated intent and entity evaluation with reports."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import classification_report, confusion_matrix
from sklearn.model_selection import StratifiedKFold, train_test_split

from bot.nlu.classifier import FALLBACK
from bot.nlu.encoder import Encoder, load_encoder
from bot.nlu.engine import NLUConfig, NLUEngine, Progress
from bot.training_data.model import Example, NLUData


@dataclass
class Evaluation:
    """Predictions for a set of examples, plus the reports built from them."""

    examples: list[Example]
    predicted: list[str]
    confidences: list[float]
    entity_hits: int = 0
    entity_total: int = 0
    entity_predicted: int = 0

    @property
    def accuracy(self) -> float:
        right = sum(p == e.intent for p, e in zip(self.predicted, self.examples, strict=True))
        return right / max(len(self.examples), 1)

    def report(self) -> dict[str, Any]:
        labels = sorted({e.intent for e in self.examples} | set(self.predicted))
        truth = [e.intent for e in self.examples]
        report: dict[str, Any] = classification_report(
            truth, self.predicted, labels=labels, output_dict=True, zero_division=0
        )
        precision = self.entity_hits / max(self.entity_predicted, 1)
        recall = self.entity_hits / max(self.entity_total, 1)
        report["entities"] = {
            "precision": precision,
            "recall": recall,
            "f1": 2 * precision * recall / max(precision + recall, 1e-9),
            "support": self.entity_total,
        }
        return report

    def misclassified(self) -> list[dict[str, Any]]:
        return [
            {"text": e.text, "intent": e.intent, "predicted": p, "confidence": round(c, 4), "file": str(e.location)}
            for e, p, c in zip(self.examples, self.predicted, self.confidences, strict=True)
            if p != e.intent
        ]


def _evaluate(engine: NLUEngine, examples: list[Example]) -> Evaluation:
    results = engine.parse_many([e.text for e in examples])
    ev = Evaluation(
        examples,
        [r["intent"]["name"] for r in results],
        [float(r["intent"]["confidence"]) for r in results],
    )
    for example, result in zip(examples, results, strict=True):
        gold = {(s.start, s.end, s.entity) for s in example.entities}
        found = {(e["start"], e["end"], e["entity"]) for e in result["entities"]}
        ev.entity_total += len(gold)
        ev.entity_predicted += len(found)
        ev.entity_hits += len(gold & found)
    return ev


def _subset(data: NLUData, examples: list[Example]) -> NLUData:
    return replace(data, examples=examples)


def held_out(
    data: NLUData,
    entity_names: set[str],
    *,
    test_fraction: float = 0.2,
    seed: int = 0,
    config: NLUConfig | None = None,
    encoder: Encoder | None = None,
    progress: Progress | None = None,
) -> Evaluation:
    """Train on a stratified part of the data, evaluate on the rest."""
    examples = data.examples
    train, test = train_test_split(
        examples, test_size=test_fraction, random_state=seed, stratify=[e.intent for e in examples]
    )
    config = config or NLUConfig()
    encoder = encoder or load_encoder(config.encoder)
    engine = NLUEngine.train(_subset(data, list(train)), entity_names, config=config, encoder=encoder,
                             progress=progress)
    return _evaluate(engine, list(test))


def cross_validate(
    data: NLUData,
    entity_names: set[str],
    folds: int,
    *,
    seed: int = 0,
    config: NLUConfig | None = None,
    encoder: Encoder | None = None,
    progress: Progress | None = None,
) -> Evaluation:
    """Every example is predicted once, by a model that did not see it."""
    config = config or NLUConfig()
    encoder = encoder or load_encoder(config.encoder)
    examples = data.examples
    labels = [e.intent for e in examples]
    merged: Evaluation | None = None
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for i, (train_idx, test_idx) in enumerate(splitter.split(np.zeros(len(labels)), labels)):
        if progress:
            progress(f"fold {i + 1}/{folds}", i, folds)
        engine = NLUEngine.train(_subset(data, [examples[j] for j in train_idx]), entity_names,
                                 config=config, encoder=encoder)
        ev = _evaluate(engine, [examples[j] for j in test_idx])
        if merged is None:
            merged = ev
        else:
            merged.examples += ev.examples
            merged.predicted += ev.predicted
            merged.confidences += ev.confidences
            merged.entity_hits += ev.entity_hits
            merged.entity_total += ev.entity_total
            merged.entity_predicted += ev.entity_predicted
    assert merged is not None
    return merged


def write_reports(ev: Evaluation, out_dir: Path) -> dict[str, Path]:
    """intent_report.json, misclassified.json and confusion_matrix.png under out_dir."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "report": out_dir / "intent_report.json",
        "errors": out_dir / "misclassified.json",
        "confusion": out_dir / "confusion_matrix.png",
    }
    paths["report"].write_text(json.dumps(ev.report(), indent=2))
    paths["errors"].write_text(json.dumps(ev.misclassified(), indent=2, ensure_ascii=False))
    labels = sorted({e.intent for e in ev.examples} | set(ev.predicted) | {FALLBACK} - {""})
    labels = [lb for lb in labels if lb in set(ev.predicted) | {e.intent for e in ev.examples}]
    matrix = confusion_matrix([e.intent for e in ev.examples], ev.predicted, labels=labels)
    size = max(6.0, 0.38 * len(labels))
    fig, ax = plt.subplots(figsize=(size + 2, size))
    im = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true intent")
    ax.set_title(f"Intent confusion matrix (accuracy {ev.accuracy:.1%}, n={len(ev.examples)})")
    for (r, c), v in np.ndenumerate(matrix):
        if v:
            ax.text(c, r, str(v), ha="center", va="center", fontsize=6,
                    color="white" if v > matrix.max() / 2 else "black")
    fig.colorbar(im, ax=ax, fraction=0.03)
    fig.tight_layout()
    fig.savefig(paths["confusion"], dpi=110)
    plt.close(fig)
    return paths
