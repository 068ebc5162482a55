"""The NLU engine: train on Rasa-format data, parse text into Rasa's parse format."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from bot.language import detect_language, normalise_text
from bot.nlu.classifier import FALLBACK, ClassifierConfig, IntentClassifier, train_classifier
from bot.nlu.encoder import Encoder, TransformerEncoder, base_encoder, load_encoder
from bot.nlu.entities import CRFExtractor, Entity, PatternExtractors, merge
from bot.nlu.numbers import normalise_numbers
from bot.nlu.onnx_encoder import OnnxEncoder, export_onnx
from bot.nlu.places import city_from_gazetteer
from bot.nlu.tuning import TuningConfig, calibration_split, tune_encoder
from bot.training_data.model import Example, NLUData

# Longer texts are cut before encoding and entity extraction: nobody says more in one turn.
MAX_PARSE_CHARS = 1000
RANKING_LENGTH = 10
Progress = Callable[[str, int, int], None]
Runtime = Literal["onnx", "torch"]


@dataclass(frozen=True)
class NLUConfig:
    """What a model is trained with; part of the model id."""

    encoder: str = "all-MiniLM-L6-v2"
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    tuning: TuningConfig = field(default_factory=TuningConfig)
    # What runs a transformer encoder at parse time: its exported ONNX graph (same vectors, ~2x faster) or torch.
    runtime: Runtime = "onnx"
    # The encoder of each language other than the base (English) one; measured in bench/results/nlu.json.
    encoders: tuple[tuple[str, str], ...] = (("zh", "multilingual-e5-small"),)

    def to_dict(self) -> dict[str, Any]:
        return {
            "encoder": self.encoder,
            "classifier": self.classifier.__dict__,
            "tuning": self.tuning.__dict__,
            "runtime": self.runtime,
            "encoders": dict(self.encoders),
        }

    def for_language(self, language: str) -> NLUConfig:
        """The config of the model that serves `language` (its own encoder, which is used as it is)."""
        encoder = dict(self.encoders).get(language)
        if encoder is None or encoder == self.encoder:
            return self
        return NLUConfig(encoder=encoder, classifier=self.classifier, tuning=TuningConfig(layers=0),
                         runtime=self.runtime, encoders=())

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> NLUConfig:
        tuning = TuningConfig(**raw["tuning"]) if "tuning" in raw else TuningConfig(layers=0)
        runtime = raw.get("runtime", "torch")  # models from before the ONNX export ran on torch
        if runtime not in ("onnx", "torch"):
            raise ValueError(f"unknown NLU runtime {runtime!r}: use 'onnx' or 'torch'")
        classifier = ClassifierConfig(**raw["classifier"])
        encoders = tuple(sorted(raw.get("encoders", {}).items()))
        return cls(encoder=raw["encoder"], classifier=classifier, tuning=tuning, runtime=runtime, encoders=encoders)


@dataclass
class NLUEngine:
    """A trained model in memory: encoder, intent classifier, entity extractors."""

    model_id: str
    config: NLUConfig
    encoder: Encoder
    classifier: IntentClassifier
    patterns: PatternExtractors
    crf: CRFExtractor
    trained_at: float = 0.0
    language: str = "en"
    # The models of the other languages (each with its own encoder); a text goes to its language's model.
    others: dict[str, NLUEngine] = field(default_factory=dict)

    @property
    def languages(self) -> list[str]:
        return [self.language, *self.others]

    @classmethod
    def train(
        cls,
        data: NLUData,
        entity_names: set[str],
        *,
        config: NLUConfig | None = None,
        model_id: str = "unsaved",
        encoder: Encoder | None = None,
        progress: Progress | None = None,
        held_out: list[Example] | None = None,
    ) -> NLUEngine:
        """Train one model per language of `data` (English first); `held_out` tunes calibration and thresholds.

        Without `held_out`, a big enough data set lends a stratified part of its
        examples for that (they still train the classifier, not the encoder).
        """
        config = config or NLUConfig()
        languages = data.languages or ["en"]
        if len(languages) == 1:
            return cls._train_one(data, entity_names, config, model_id, encoder, progress, held_out, languages[0])
        engines = []
        for language in languages:
            held = [e for e in held_out if e.language == language] if held_out is not None else None
            lang_config = config.for_language(language)
            given = encoder if lang_config.encoder == config.encoder else None
            engines.append(cls._train_one(data.for_language(language), entity_names, lang_config, model_id, given,
                                          progress, held, language))
        main = engines[0]
        main.config = config
        main.others = {e.language: e for e in engines[1:]}
        return main

    @classmethod
    def _train_one(
        cls,
        data: NLUData,
        entity_names: set[str],
        config: NLUConfig,
        model_id: str,
        encoder: Encoder | None,
        progress: Progress | None,
        held_out: list[Example] | None,
        language: str,
    ) -> NLUEngine:
        step = progress or (lambda _msg, _i, _n: None)
        step("loading encoder", 0, 4)
        encoder = base_encoder(encoder or load_encoder(config.encoder))
        train, held, lent = list(data.examples), held_out, False
        tune = config.tuning.layers > 0 and len(train) >= config.tuning.min_examples
        if tune and not held:
            train, held = calibration_split(train, config.tuning.seed)
            lent = bool(held)
        texts, intents = [e.text for e in train], [e.intent for e in train]
        if tune and held and isinstance(encoder, TransformerEncoder):
            step("fine-tuning encoder", 1, 4)
            encoder, vectors = tune_encoder(encoder, texts, intents, config.tuning)
            encoder = _for_parsing(encoder, config.runtime)
        else:
            step("encoding examples", 1, 4)
            encoder = _for_parsing(encoder, config.runtime)
            vectors = encoder.encode(texts)
        step("training intent classifier", 2, 4)
        held_vectors = (encoder.encode([e.text for e in held]), [e.intent for e in held]) if held else None
        classifier = train_classifier(
            vectors, intents, config.classifier, held_out=held_vectors, fold_in_held_out=lent
        )
        step("training entity extractor", 3, 4)
        patterns = PatternExtractors.from_data(data, entity_names | set(data.entity_names))
        crf = CRFExtractor.train(data.examples, patterns, seed=config.classifier.seed)
        step("done", 4, 4)
        return cls(model_id, config, encoder, classifier, patterns, crf, trained_at=time.time(), language=language)

    def parse(self, text: str, *, language: str | None = None, fallback: str | None = None) -> dict[str, Any]:
        """Parse one text into Rasa's format (`intent`, `entities`, `intent_ranking`) plus its `language`.

        The language is `language` if given, else the one the text is written in, else `fallback` (the
        conversation's language: "48215" says nothing), else the base language.
        """
        return self.parse_many([text], language=language, fallback=fallback)[0]

    def language_of(self, text: str, *, language: str | None = None, fallback: str | None = None) -> str:
        for candidate in (language, detect_language(text, self.languages), fallback):
            if candidate in self.languages:
                return candidate
        return self.language

    def parse_many(
        self, texts: list[str], *, language: str | None = None, fallback: str | None = None
    ) -> list[dict[str, Any]]:
        chosen = [self.language_of(t, language=language, fallback=fallback) for t in texts]
        results: list[dict[str, Any]] = [{} for _ in texts]
        for lang in dict.fromkeys(chosen):
            rows = [i for i, c in enumerate(chosen) if c == lang]
            engine = self.others.get(lang, self)
            parsed = engine._parse_many([normalise_text(texts[i], lang) for i in rows])
            for i, result in zip(rows, parsed, strict=True):
                results[i] = {**result, "text": texts[i], "language": lang}
        return results

    def _parse_many(self, texts: list[str]) -> list[dict[str, Any]]:
        cleaned = [_clean(t) for t in texts]
        to_encode = [c for c in cleaned if c]
        vectors = self.encoder.encode(to_encode) if to_encode else np.zeros((0, self.encoder.dim), dtype=np.float32)
        probs = self.classifier.predict_proba(vectors)
        kept = self.classifier.accepts(probs, self.classifier.similarity(vectors))
        results: list[dict[str, Any]] = []
        row = 0
        for original, text in zip(texts, cleaned, strict=True):
            if not text:
                results.append(_empty(original))
                continue
            results.append(self._result(original, text, probs[row], bool(kept[row])))
            row += 1
        return results

    def _result(self, original: str, text: str, probs: np.ndarray[Any, Any], kept: bool) -> dict[str, Any]:
        order = np.argsort(-probs)[:RANKING_LENGTH]
        ranking = [{"name": self.classifier.classes[i], "confidence": round(float(probs[i]), 4)} for i in order]
        intent = dict(ranking[0])
        if not kept:
            fallback = {"name": FALLBACK, "confidence": round(self.classifier.threshold, 4)}
            ranking = [fallback, *ranking][:RANKING_LENGTH]
            intent = dict(fallback)
        return {
            "text": original,
            "intent": intent,
            "entities": [e.to_rasa() for e in self.entities(text)],
            "intent_ranking": ranking,
        }

    def entities(self, text: str) -> list[Entity]:
        norm = normalise_numbers(text)
        found = self.patterns.extract(norm) + self.crf.extract(norm, self.patterns)
        return merge(found + city_from_gazetteer(norm.original, found))

    def info(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "encoder": self.encoder.name,
            "intents": [c for c in self.classifier.classes],
            "fallback_threshold": round(self.classifier.threshold, 4),
            "similarity_threshold": round(self.classifier.similarity_threshold, 4),
            "tuned_layers": getattr(self.encoder, "tuned_layers", 0),
            "runtime": "onnx" if isinstance(self.encoder, OnnxEncoder) else "torch",
            "trained_at": self.trained_at,
            "language": self.language,
            "languages": {
                e.language: {"encoder": e.encoder.name, "intents": len(e.classifier.classes),
                             "fallback_threshold": round(e.classifier.threshold, 4)}
                for e in (self, *self.others.values())
            },
        }


def _for_parsing(encoder: Encoder, runtime: Runtime) -> Encoder:
    """The encoder as it runs at parse time; its vectors from here on train the classifier and thresholds."""
    return export_onnx(encoder) if runtime == "onnx" and isinstance(encoder, TransformerEncoder) else encoder


def _clean(text: str) -> str:
    """Drop control characters and surplus whitespace; cut very long input."""
    printable = "".join(ch if ch.isprintable() else " " for ch in text[:MAX_PARSE_CHARS])
    return " ".join(printable.split())


def _empty(original: str) -> dict[str, Any]:
    fallback = {"name": FALLBACK, "confidence": 0.0}
    return {"text": original, "intent": fallback, "entities": [], "intent_ranking": [fallback]}


def default_models_dir() -> Path:
    return Path("models")
