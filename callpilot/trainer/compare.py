"""New model vs active model on the same held-out examples, conversation tests and inbox texts (pure functions
over parse results, so the comparison is testable without training)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sklearn.metrics import precision_recall_fscore_support

NOT_UNDERSTOOD = ("nlu_fallback", "out_of_scope")
F1_CHANGE = 0.01  # smaller per-intent F1 changes are not highlighted


def scores(truth: Sequence[str], predicted: Sequence[str]) -> dict[str, Any]:
    """Accuracy and per-intent F1 (over the intents in the truth)."""
    labels = sorted(set(truth))
    if not labels:
        return {"accuracy": None, "f1": {}, "examples": 0}
    _, _, f1, _ = precision_recall_fscore_support(truth, predicted, labels=labels, zero_division=0)
    right = sum(t == p for t, p in zip(truth, predicted, strict=True))
    per_intent = {n: round(float(v), 4) for n, v in zip(labels, f1, strict=True)}
    return {"accuracy": round(right / len(truth), 4), "f1": per_intent, "examples": len(truth)}


def held_out_comparison(texts: Sequence[str], truth: Sequence[str], new: Sequence[str],
                        old: Sequence[str] | None) -> dict[str, Any]:
    """Accuracy and F1 of both, F1 changes, and the examples the new model gets wrong that the old got right."""
    new_scores = scores(truth, new)
    old_scores = scores(truth, old) if old is not None else None
    changes = []
    if old_scores is not None:
        for intent, f1 in new_scores["f1"].items():
            before = old_scores["f1"].get(intent, 0.0)
            if abs(f1 - before) >= F1_CHANGE:
                changes.append({"intent": intent, "old": before, "new": f1, "delta": round(f1 - before, 4)})
    worse = [] if old is None else [
        {"text": t, "intent": g, "old": o, "new": n}
        for t, g, n, o in zip(texts, truth, new, old, strict=True) if o == g and n != g]
    better = [] if old is None else [
        {"text": t, "intent": g, "old": o, "new": n}
        for t, g, n, o in zip(texts, truth, new, old, strict=True) if o != g and n == g]
    return {"new": new_scores, "old": old_scores, "f1_changes": sorted(changes, key=lambda c: c["delta"]),
            "worse": worse, "better": better}


def handled(parse: dict[str, Any], threshold: float) -> bool:
    intent = parse.get("intent") or {}
    return intent.get("name") not in NOT_UNDERSTOOD and float(intent.get("confidence") or 0.0) >= threshold


def inbox_comparison(items: Sequence[dict[str, Any]], new: Sequence[dict[str, Any]],
                     old: Sequence[dict[str, Any]] | None, threshold: float) -> list[dict[str, Any]]:
    """The inbox items the new model now understands (and the active one did not); an item a trainer assigned
    (`expected`) counts only when it gets that intent."""
    out = []
    for index, (item, parse) in enumerate(zip(items, new, strict=True)):
        before = old[index] if old is not None else None
        expected = item.get("expected")
        right = expected is None or parse["intent"]["name"] == expected
        was_right = before is not None and handled(before, threshold) and (
            expected is None or before["intent"]["name"] == expected)
        if right and (handled(parse, threshold) or expected == "out_of_scope") and not was_right:
            out.append({"id": item["id"], "text": item["text"], "intent": parse["intent"]["name"],
                        "confidence": parse["intent"]["confidence"]})
    return out
