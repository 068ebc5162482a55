"""Trained models on disk: one folder per model id, an `active` pointer swapped atomically.

A model id is derived from a fingerprint of the training data and the config, so
training is skipped when nothing changed. A new model is written to a temporary
folder, renamed into place, and only then is `models/active` replaced, so a
crash or broken data never leaves a half-written model active.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from bot.nlu.classifier import IntentClassifier
from bot.nlu.encoder import Encoder, TransformerEncoder, base_encoder, load_encoder
from bot.nlu.engine import NLUConfig, NLUEngine, Progress
from bot.nlu.entities import CRFExtractor, PatternExtractors
from bot.nlu.onnx_encoder import GRAPH_FILE, OnnxEncoder
from bot.training_data import fingerprint, load_project
from bot.training_data.model import Project

MODEL_FORMAT = "callpilot-nlu-5"
ACTIVE = "active"
# The model id covers the code that trains and applies a model, so a change there retrains.
_CODE = (
    *("classifier.py", "encoder.py", "engine.py", "entities.py"),
    *("numbers.py", "onnx_encoder.py", "storage.py", "tuning.py", "e5_encoder.py"),
)


def code_fingerprint() -> str:
    digest = hashlib.sha256()
    for name in _CODE:
        digest.update((Path(__file__).parent / name).read_bytes())
    for name in ("detect.py", "numerals.py"):  # the language of a text and its Chinese numbers
        digest.update((Path(__file__).parent.parent / "language" / name).read_bytes())
    return digest.hexdigest()


class ModelNotFound(FileNotFoundError):
    """No trained model where one was expected."""


def model_id_for(project: Project, config: NLUConfig) -> str:
    blob = json.dumps(
        {
            "format": MODEL_FORMAT,
            "code": code_fingerprint(),
            "data": fingerprint(project),
            "config": config.to_dict(),
        },
        sort_keys=True,
    )
    return "nlu-" + hashlib.sha256(blob.encode()).hexdigest()[:16]


def save(engine: NLUEngine, models_dir: Path, *, activate: bool = True) -> Path:
    """Write `engine` under models_dir/<model_id> atomically; optionally make it active."""
    models_dir.mkdir(parents=True, exist_ok=True)
    target = models_dir / engine.model_id
    tmp = Path(tempfile.mkdtemp(prefix=f".{engine.model_id}-", dir=models_dir))
    try:
        meta = _write_parts(engine, tmp)
        meta["languages"] = {}
        for language, other in engine.others.items():
            (tmp / language).mkdir()
            meta["languages"][language] = _write_parts(other, tmp / language)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False))
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if activate:
        set_active(models_dir, engine.model_id)
    return target


def _write_parts(engine: NLUEngine, folder: Path) -> dict[str, Any]:
    """One language's classifier, entity extractors and (tuned or exported) encoder; returns its meta."""
    np.savez(folder / "classifier.npz", **engine.classifier.to_arrays())  # type: ignore[arg-type]
    if isinstance(engine.encoder, OnnxEncoder):
        # The whole encoder as run at parse time (~90 MB float32), tuned layers included.
        engine.encoder.save(folder)
    elif isinstance(engine.encoder, TransformerEncoder) and engine.encoder.tuned_layers:
        # Only the fine-tuned top layers; the rest is the installed encoder.
        np.savez(folder / "encoder.npz", **engine.encoder.tuned_state())  # type: ignore[arg-type]
    joblib.dump({"patterns": engine.patterns, "crf": engine.crf}, folder / "entities.joblib")
    return {
        "model_id": engine.model_id,
        "format": MODEL_FORMAT,
        "config": engine.config.to_dict(),
        "trained_at": engine.trained_at,
        "intents": engine.classifier.classes,
        "encoder_name": engine.encoder.name,
        "tuned_layers": getattr(engine.encoder, "tuned_layers", 0),
        "language": engine.language,
    }


def set_active(models_dir: Path, model_id: str) -> None:
    pointer = models_dir / f".{ACTIVE}.{os.getpid()}"
    pointer.write_text(model_id + "\n")
    os.replace(pointer, models_dir / ACTIVE)


def active_id(models_dir: Path) -> str | None:
    try:
        model_id = (models_dir / ACTIVE).read_text().strip()
    except FileNotFoundError:
        return None
    return model_id if (models_dir / model_id / "meta.json").exists() else None


def load(models_dir: Path, model_id: str | None = None, *, encoder: Encoder | None = None) -> NLUEngine:
    """Load a model (the active one by default)."""
    model_id = model_id or active_id(models_dir)
    if model_id is None:
        raise ModelNotFound(f"no trained model in {models_dir}/: run `callpilot train`")
    folder = models_dir / model_id
    try:
        meta: dict[str, Any] = json.loads((folder / "meta.json").read_text())
    except FileNotFoundError as exc:
        raise ModelNotFound(f"model {model_id} not found in {models_dir}/") from exc
    engine = _read_parts(folder, meta, model_id, encoder)
    engine.others = {language: _read_parts(folder / language, part, model_id, None)
                     for language, part in meta.get("languages", {}).items()}
    return engine


def _read_parts(folder: Path, meta: dict[str, Any], model_id: str, encoder: Encoder | None) -> NLUEngine:
    config = NLUConfig.from_dict(meta["config"])
    with np.load(folder / "classifier.npz") as arrays:
        classifier = IntentClassifier.from_arrays(dict(arrays))
    parts = joblib.load(folder / "entities.joblib")
    patterns: PatternExtractors = parts["patterns"]
    crf: CRFExtractor = parts["crf"]
    return NLUEngine(
        model_id=model_id,
        config=config,
        encoder=_load_encoder(folder, meta, config, encoder),
        classifier=classifier,
        patterns=patterns,
        crf=crf,
        trained_at=float(meta.get("trained_at", 0.0)),
        language=str(meta.get("language", "en")),
    )


def _load_encoder(folder: Path, meta: dict[str, Any], config: NLUConfig, given: Encoder | None) -> Encoder:
    """The model's encoder: its ONNX graph (no torch needed) or the base encoder with its tuned layers."""
    if (folder / GRAPH_FILE).exists():
        name = str(meta.get("encoder_name", config.encoder))
        base = base_encoder(given) if given is not None else None
        layers = int(meta.get("tuned_layers", 0))
        return OnnxEncoder.load(folder, name=name, source=config.encoder, tuned_layers=layers, base=base)
    encoder = base_encoder(given or load_encoder(config.encoder))
    if isinstance(encoder, TransformerEncoder) and (folder / "encoder.npz").exists():
        with np.load(folder / "encoder.npz") as tuned:
            encoder = encoder.with_tuned_top(config.tuning.layers, dict(tuned))
    return encoder


@dataclass(frozen=True)
class TrainOutcome:
    engine: NLUEngine
    trained: bool  # False when an up-to-date model was found
    seconds: float


def train_project(
    project: Project,
    models_dir: Path,
    *,
    config: NLUConfig | None = None,
    force: bool = False,
    progress: Progress | None = None,
    encoder: Encoder | None = None,
) -> TrainOutcome:
    """Train unless a model for this data and config exists; activate it either way."""
    config = config or NLUConfig()
    model_id = model_id_for(project, config)
    started = time.perf_counter()
    if not force and (models_dir / model_id / "meta.json").exists():
        engine = load(models_dir, model_id, encoder=encoder)
        set_active(models_dir, model_id)
        return TrainOutcome(engine, False, time.perf_counter() - started)
    engine = NLUEngine.train(
        project.nlu,
        set(project.domain.entities),
        config=config,
        model_id=model_id,
        encoder=encoder,
        progress=progress,
    )
    save(engine, models_dir)
    prune(models_dir, keep=KEEP_MODELS)
    return TrainOutcome(engine, True, time.perf_counter() - started)


KEEP_MODELS = 3  # model folders kept after training (the active one always, then the newest)


def prune(models_dir: Path, *, keep: int = KEEP_MODELS) -> list[str]:
    """Delete all but the `keep` newest model folders (never the active one); each is ~90 MB.

    A server that already loaded an older model keeps running: the model is in its memory.
    Returns the ids deleted.
    """
    active = active_id(models_dir)
    folders = [p for p in models_dir.iterdir() if p.is_dir() and (p / "meta.json").exists()]
    folders.sort(key=lambda p: (p.name == active, (p / "meta.json").stat().st_mtime), reverse=True)
    removed = []
    for folder in folders[max(keep, 1):]:
        if folder.name != active:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
    return removed


def load_or_train(
    data_dir: Path, models_dir: Path, *, config: NLUConfig | None = None, encoder: Encoder | None = None
) -> NLUEngine:
    """The model for `data_dir`, trained if needed. Raises DataError on broken data."""
    project = load_project(data_dir)
    return train_project(project, models_dir, config=config, encoder=encoder).engine
