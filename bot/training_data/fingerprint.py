"""A stable hash of the NLU content that changes what a model learns."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from bot.training_data.model import NLUData, Project

_FORMAT = "callpilot-nlu-fingerprint-v1"


def fingerprint(data: Project | NLUData) -> str:
    """SHA-256 of examples, synonyms, regexes and lookups; ignores comments, layout, file order."""
    nlu = data.nlu if isinstance(data, Project) else data
    examples = sorted(
        json.dumps(
            [
                e.text,
                e.intent,
                e.language,
                sorted(
                    [s.start, s.end, s.entity, s.value, s.role or "", s.group or ""]
                    for s in e.entities
                ),
            ],
            ensure_ascii=False,
        )
        for e in nlu.examples
    )
    content = {
        "format": _FORMAT,
        "examples": examples,  # duplicates kept: they weigh on training
        "synonyms": _grouped((s.value, s.examples) for s in nlu.synonyms),
        "regexes": _grouped((_named(r.name, r.language), r.patterns) for r in nlu.regexes),
        "lookups": _grouped((_named(t.name, t.language), t.elements) for t in nlu.lookups),
    }
    canonical = json.dumps(
        content, ensure_ascii=False, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _named(name: str, language: str) -> str:
    return name if language == "en" else f"{language}:{name}"


def _grouped(entries: Iterable[tuple[str, tuple[str, ...]]]) -> dict[str, list[str]]:
    """Merge entries that share a name (they may be split across files) into sorted sets."""
    merged: dict[str, set[str]] = {}
    for name, values in entries:
        merged.setdefault(name, set()).update(values)
    return {name: sorted(values) for name, values in merged.items()}
