"""Entity extraction: regexes, lookup tables and synonyms from the data, plus a trained CRF.

All extractors look at the number-normalised text ("four eight two one five" ->
"48215") and report spans in the caller's original text.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pycrfsuite
import sklearn_crfsuite

from bot.nlu.numbers import NormalisedText, normalise_numbers
from bot.training_data.model import Example, NLUData

# Chinese is written without spaces: each Han character is a token of its own (the CRF sees its neighbours).
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_HAN}]|(?:(?![{_HAN}])[\w@.+'-])+")
# Which extractor wins when two report the same span (first wins).
PRIORITY = ("RegexEntityExtractor", "CRFEntityExtractor", "LookupEntityExtractor", "GazetteerEntityExtractor")


@dataclass(frozen=True)
class Entity:
    entity: str
    value: str
    start: int
    end: int
    confidence: float
    extractor: str
    role: str | None = None
    group: str | None = None

    def to_rasa(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "entity": self.entity,
            "start": self.start,
            "end": self.end,
            "confidence_entity": round(self.confidence, 4),
            "value": self.value,
            "extractor": self.extractor,
        }
        if self.role:
            out["role"] = self.role
        if self.group:
            out["group"] = self.group
        return out


def canonical_value(entity: str, text: str, synonyms: dict[str, str]) -> str:
    """Normalise a raw value: spoken digits, id formats, then synonyms."""
    value = normalise_numbers(text).text.strip()
    if entity == "order_number":
        digits = re.sub(r"\D", "", value)
        value = digits or value
    elif entity == "repair_number":
        digits = re.sub(r"\D", "", value)
        value = f"R{digits}" if digits else value
    elif entity == "phone_number":
        value = ("+" if value.startswith("+") else "") + re.sub(r"\D", "", value)
    return synonyms.get(value.lower(), synonyms.get(text.lower(), value))


@dataclass
class PatternExtractors:
    """Regex and lookup-table extractors compiled from the training data."""

    regexes: dict[str, list[re.Pattern[str]]] = field(default_factory=dict)
    lookups: dict[str, re.Pattern[str]] = field(default_factory=dict)
    synonyms: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_data(cls, data: NLUData, entity_names: set[str]) -> PatternExtractors:
        regexes: dict[str, list[re.Pattern[str]]] = {}
        for feature in data.regexes:
            if feature.name in entity_names:
                regexes.setdefault(feature.name, []).extend(re.compile(p) for p in feature.patterns)
        lookups: dict[str, re.Pattern[str]] = {}
        for table in data.lookups:
            if table.name in entity_names and table.elements:
                words = sorted({e.strip() for e in table.elements if e.strip()}, key=len, reverse=True)
                alternatives = "|".join(re.escape(w) for w in words)
                lookups[table.name] = re.compile(rf"(?<![^\W{_HAN}])(?:{alternatives})(?![^\W{_HAN}])", re.IGNORECASE)
        return cls(regexes, lookups, data.full_synonym_map())

    def extract(self, norm: NormalisedText) -> list[Entity]:
        found: list[Entity] = []
        for name, patterns in self.regexes.items():
            for pattern in patterns:
                for m in pattern.finditer(norm.text):
                    start, end = norm.to_original(m.start(), m.end())
                    raw = norm.original[start:end]
                    value = canonical_value(name, raw, self.synonyms)
                    found.append(Entity(name, value, start, end, 1.0, "RegexEntityExtractor"))
        for name, pattern in self.lookups.items():
            for m in pattern.finditer(norm.original):
                value = canonical_value(name, m.group(), self.synonyms)
                found.append(Entity(name, value, m.start(), m.end(), 1.0, "LookupEntityExtractor"))
        return found

    def feature_spans(self, text: str) -> list[tuple[int, int, str]]:
        """Spans covered by each regex / lookup table (features for the CRF)."""
        spans = [
            (m.start(), m.end(), "re:" + name)
            for name, patterns in self.regexes.items()
            for p in patterns
            for m in p.finditer(text)
        ]
        spans += [(m.start(), m.end(), "lk:" + name) for name, p in self.lookups.items() for m in p.finditer(text)]
        return spans


def _tokens(text: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), m.group().strip(".,'")) for m in _TOKEN.finditer(text)]


def _features(text: str, patterns: PatternExtractors) -> list[dict[str, Any]]:
    toks = _tokens(text)
    spans = patterns.feature_spans(text)
    feats: list[dict[str, Any]] = []
    for i, (start, end, word) in enumerate(toks):
        low = word.lower()
        f: dict[str, Any] = {
            "bias": 1.0,
            "low": low,
            "suffix3": low[-3:],
            "prefix2": low[:2],
            "isdigit": word.isdigit(),
            "ndigits": min(sum(c.isdigit() for c in word), 9),
            "istitle": word.istitle(),
            "shape": re.sub(r"[a-z]+", "a", re.sub(r"[A-Z]+", "A", re.sub(r"\d+", "0", word))),
        }
        for s_start, s_end, name in spans:
            if s_start <= start and end <= s_end:
                f[name] = True
        for off in (-2, -1, 1, 2):
            j = i + off
            if 0 <= j < len(toks):
                f[f"{off}:low"] = toks[j][2].lower()
                f[f"{off}:isdigit"] = toks[j][2].isdigit()
            else:
                f[f"{off}:edge"] = True
        feats.append(f)
    return feats


def _labels(example: Example, norm: NormalisedText) -> list[str]:
    """BIO labels for the tokens of the normalised text."""
    spans = []
    for span in example.entities:
        n_start, n_end = norm.from_original(span.start, span.end)
        spans.append((n_start, n_end, span.entity + (f"#{span.role}" if span.role else "")))
    labels: list[str] = []
    for start, end, _ in _tokens(norm.text):
        label = "O"
        for s, e, name in spans:
            if start >= s and end <= e:
                label = ("B-" if start == s or not labels or labels[-1][2:] != name else "I-") + name
                break
        labels.append(label)
    return labels


@dataclass
class CRFExtractor:
    """A CRF over tokens, trained on the annotated examples, kept as crfsuite's model bytes and tagged in memory.

    sklearn-crfsuite's estimator writes its model to a temporary file at every load and deletes it only when it
    is garbage-collected: every process that loaded a model and was killed left a `/tmp/model*.crfsuite` behind.
    One tagger per model, not safe to share between threads (pycrfsuite's `set` then `marginal`): calls on the
    dialogue's worker threads take turns on a lock."""

    model: bytes | None = None  # crfsuite's model file, or None when no example is annotated
    _tagger: pycrfsuite.Tagger | None = field(default=None, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.model is not None:
            self._tagger = pycrfsuite.Tagger()
            self._tagger.open_inmemory(self.model)

    def __getstate__(self) -> dict[str, Any]:  # saved with the model (joblib): a lock and a tagger are not
        return {"crfsuite": self.model}

    def __setstate__(self, state: dict[str, Any]) -> None:
        model = state.get("crfsuite")
        if "model" in state and state["model"] is not None:  # saved before 2026-12-05: sklearn-crfsuite's CRF
            model = _model_bytes(state["model"])
        self.__init__(model)  # type: ignore[misc]

    @classmethod
    def train(cls, examples: list[Example], patterns: PatternExtractors, seed: int = 0) -> CRFExtractor:
        annotated = [e for e in examples if e.entities]
        if not annotated:
            return cls(None)
        xs, ys = [], []
        for ex in examples:
            norm = normalise_numbers(ex.text)
            xs.append(_features(norm.text, patterns))
            ys.append(_labels(ex, norm))
        crf = sklearn_crfsuite.CRF(algorithm="lbfgs", c1=0.05, c2=0.05, max_iterations=100)
        crf.fit(xs, ys)
        return cls(_model_bytes(crf))

    def _marginals(self, features: list[dict[str, Any]]) -> list[dict[str, float]]:
        """Each token's probability of every label (what sklearn-crfsuite's `predict_marginals_single` gives)."""
        assert self._tagger is not None
        with self._lock:
            tagger = self._tagger
            labels = tagger.labels()
            tagger.set(features)
            return [{label: tagger.marginal(label, i) for label in labels} for i in range(len(features))]

    def extract(self, norm: NormalisedText, patterns: PatternExtractors) -> list[Entity]:
        if self.model is None or not norm.text.strip():
            return []
        toks = _tokens(norm.text)
        if not toks:
            return []
        features = _features(norm.text, patterns)
        marginals = self._marginals(features)
        found: list[Entity] = []
        current: list[tuple[int, int, float]] = []
        name = ""
        for (start, end, _), probs in zip(toks, marginals, strict=True):
            label = max(probs, key=lambda k: probs[k])
            if label.startswith("B-") or (label.startswith("I-") and label[2:] != name):
                found.extend(self._close(norm, name, current, patterns))
                current, name = [(start, end, probs[label])], label[2:]
            elif label.startswith("I-"):
                current.append((start, end, probs[label]))
            else:
                found.extend(self._close(norm, name, current, patterns))
                current, name = [], ""
        found.extend(self._close(norm, name, current, patterns))
        return found

    @staticmethod
    def _close(
        norm: NormalisedText, name: str, toks: list[tuple[int, int, float]], patterns: PatternExtractors
    ) -> list[Entity]:
        if not toks or not name:
            return []
        entity, _, role = name.partition("#")
        start, end = norm.to_original(toks[0][0], toks[-1][1])
        raw = norm.original[start:end]
        confidence = float(min(p for _, _, p in toks))
        value = canonical_value(entity, raw, patterns.synonyms)
        return [Entity(entity, value, start, end, confidence, "CRFEntityExtractor", role or None)]


def _model_bytes(crf: sklearn_crfsuite.CRF) -> bytes:
    """A trained estimator's model file, read, and the file deleted (it is a temporary file of sklearn-crfsuite)."""
    data = Path(crf.modelfile.name).read_bytes()
    crf.modelfile.cleanup()
    return data


def merge(entities: list[Entity]) -> list[Entity]:
    """Drop overlapping duplicates, preferring regex, then CRF, then lookup; keep roles."""
    ranked = sorted(entities, key=lambda e: (PRIORITY.index(e.extractor), -(e.end - e.start)))
    kept: list[Entity] = []
    for ent in ranked:
        clash = next((k for k in kept if ent.start < k.end and k.start < ent.end), None)
        if clash is None:
            kept.append(ent)
        elif (clash.entity == ent.entity and ent.start <= clash.start and clash.end <= ent.end
              and ent.end - ent.start > clash.end - clash.start and ent.extractor == "LookupEntityExtractor"):
            kept[kept.index(clash)] = Entity(**{**ent.__dict__, "role": clash.role or ent.role})  # 芝加哥, not 芝加
        elif clash.role is None and ent.role and clash.entity == ent.entity:
            kept[kept.index(clash)] = Entity(**{**clash.__dict__, "role": ent.role})
    return sorted(kept, key=lambda e: e.start)
