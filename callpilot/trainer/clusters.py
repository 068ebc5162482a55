"""Inbox items grouped by meaning with the NLU's own sentence vectors, each group named by its most central text.

Pure: vectors in, groups out (any `Encoder` makes the vectors). Greedy single pass in order of how often a text
was seen, so the big groups form around the most frequent texts; a text joins the group whose centre is
nearest if their cosine similarity is at least `min_similarity`; then groups whose centres are that close merge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

MIN_SIMILARITY = 0.45  # cosine to a group's centre (the demo encoder: same topic 0.4-0.7 pairwise, others ~0)


@dataclass(frozen=True)
class Cluster:
    """Item ids (most seen first), the central item's text as the name, the callers counted in all of them."""

    name: str
    item_ids: tuple[int, ...]
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "item_ids": list(self.item_ids), "count": self.count, "size": len(self.item_ids)}


def _normalised(vectors: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    array = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    unit: npt.NDArray[np.float32] = array / np.maximum(norms, 1e-9)
    return unit


def cluster(ids: list[int], texts: list[str], counts: list[int], vectors: npt.NDArray[Any], *,
            min_similarity: float = MIN_SIMILARITY) -> list[Cluster]:
    """Groups of similar texts, the most seen group first."""
    if not ids:
        return []
    unit = _normalised(vectors)
    order = sorted(range(len(ids)), key=lambda i: -counts[i])
    members: list[list[int]] = []
    centres: list[npt.NDArray[np.float32]] = []
    for i in order:
        if centres:
            similarity = np.stack(centres) @ unit[i]
            best = int(np.argmax(similarity))
            if similarity[best] >= min_similarity:
                members[best].append(i)
                centre = unit[members[best]].mean(axis=0)
                centres[best] = centre / max(float(np.linalg.norm(centre)), 1e-9)
                continue
        members.append([i])
        centres.append(unit[i])
    members = _merge(members, unit, min_similarity)
    clusters = []
    for group in members:
        block = unit[group]
        central = group[int(np.argmax((block @ block.T).sum(axis=1)))]
        clusters.append(Cluster(texts[central], tuple(ids[i] for i in group), sum(counts[i] for i in group)))
    return sorted(clusters, key=lambda c: (-c.count, c.name))


def _merge(members: list[list[int]], unit: npt.NDArray[np.float32], min_similarity: float) -> list[list[int]]:
    """Join groups whose centres are close (the single pass cannot see a later text bridging two groups)."""
    while len(members) > 1:
        centres = np.stack([unit[g].mean(axis=0) for g in members])
        centres /= np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-9)
        similarity = centres @ centres.T
        np.fill_diagonal(similarity, -1.0)
        a, b = np.unravel_index(int(np.argmax(similarity)), similarity.shape)
        if similarity[a, b] < min_similarity:
            break
        first, second = sorted((int(a), int(b)))
        members[first] = members[first] + members[second]
        del members[second]
    return members
