"""CLINC150 and Banking77 as the engine's training data (`NLUData`, `Example`), split as published.

CLINC150's `oos` label becomes the engine's `out_of_scope` intent; Banking77 has no
validation split, so a stratified 10% of its train split is held out for calibration.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from sklearn.model_selection import train_test_split

from bot.nlu.classifier import OUT_OF_SCOPE
from bot.training_data.model import Example, Location, NLUData

BENCHMARKS = Path("/work/shared/benchmarks")


@dataclass(frozen=True)
class DataSet:
    """Training data, the held-out part for calibration and thresholds, and the test split."""

    name: str
    train: NLUData
    held_out: list[Example]
    test: list[Example]


def clinc150(folder: Path = BENCHMARKS / "clinc150") -> DataSet:
    """data_full.json: train + oos_train to train, val + oos_val held out, test + oos_test to test."""
    path = folder / "data_full.json"
    raw: dict[str, list[list[str]]] = json.loads(path.read_text())

    def examples(*splits: str) -> list[Example]:
        return [
            Example(text, OUT_OF_SCOPE if label == "oos" else label, location=Location(f"{path}#{split}", i + 1))
            for split in splits
            for i, (text, label) in enumerate(raw[split])
        ]

    return DataSet(
        "clinc150",
        NLUData(examples=examples("train", "oos_train")),
        examples("val", "oos_val"),
        examples("test", "oos_test"),
    )


def banking77(folder: Path = BENCHMARKS / "banking77", *, held_out_fraction: float = 0.1, seed: int = 0) -> DataSet:
    """train.csv minus a stratified held-out share to train, test.csv to test."""

    def read(name: str) -> list[Example]:
        with (folder / name).open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        where = str(folder / name)
        return [Example(r["text"], r["category"], location=Location(where, i + 2)) for i, r in enumerate(rows)]

    train = read("train.csv")
    fit, held = train_test_split(
        train, test_size=held_out_fraction, random_state=seed, stratify=[e.intent for e in train]
    )
    return DataSet("banking77", NLUData(examples=list(fit)), list(held), read("test.csv"))
