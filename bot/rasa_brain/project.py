"""Sans-I/O planning of a Rasa 3.x project from callpilot's `nlu_data/` files.

Files are sorted into Rasa training data, the Rasa domain, or "not Rasa" (e.g. `ivr.yml`)
by their top-level keys only: Rasa rejects unknown top-level keys, so a file qualifies
only when every key it has belongs to one kind.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

DATA_KEYS = frozenset({"version", "nlu", "rules", "stories", "responses"})
DOMAIN_KEYS = frozenset(
    {
        "version",
        "intents",
        "entities",
        "slots",
        "responses",
        "actions",
        "forms",
        "session_config",
        "e2e_actions",
        "config",
    }
)
# Keys that make a file training data rather than a domain (`responses` alone is a domain).
_DATA_MARKERS = frozenset({"nlu", "rules", "stories"})

DEFAULT_ACTION_URL = "http://127.0.0.1:8080/webhook"


class FileKind(enum.Enum):
    """What a YAML file of `nlu_data/` is to Rasa."""

    DATA = "data"
    DOMAIN = "domain"
    OTHER = "other"


@dataclass(frozen=True)
class SourceFile:
    """One YAML file read from the data directory (path relative to it, POSIX style)."""

    path: str
    text: str


@dataclass(frozen=True)
class ExportPlan:
    """Every file of the exported Rasa project: relative path -> text."""

    files: Mapping[str, str]
    skipped: tuple[str, ...]  # source files that are not Rasa YAML
    has_stories: bool


def classify(doc: Any) -> FileKind:
    """Tell from a parsed YAML document whether it is Rasa data, a Rasa domain, or neither."""
    if not isinstance(doc, dict) or not doc:
        return FileKind.OTHER
    keys = {str(k) for k in doc}
    if keys & _DATA_MARKERS and keys <= DATA_KEYS:
        return FileKind.DATA
    if keys - {"version"} and keys <= DOMAIN_KEYS:
        return FileKind.DOMAIN
    return FileKind.OTHER


def merge_domains(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge several domain documents the way Rasa merges a domain directory (first wins)."""
    merged: dict[str, Any] = {}
    for doc in docs:
        for key, value in doc.items():
            if key not in merged:
                merged[key] = value
            elif isinstance(merged[key], list) and isinstance(value, list):
                merged[key] = merged[key] + [v for v in value if v not in merged[key]]
            elif isinstance(merged[key], dict) and isinstance(value, dict):
                merged[key] = {**value, **merged[key]}
    return merged


def config_yaml(*, with_stories: bool, epochs: int = 80) -> str:
    """A fast NLU pipeline and rule-based policies for a small hotline assistant."""
    policies: list[dict[str, Any]] = [
        {"name": "MemoizationPolicy"},
        {
            "name": "RulePolicy",
            "core_fallback_threshold": 0.3,
            "core_fallback_action_name": "action_default_fallback",
            "enable_fallback_prediction": True,
        },
    ]
    if with_stories:
        policies.append({"name": "TEDPolicy", "max_history": 5, "epochs": 40})
    config: dict[str, Any] = {
        "recipe": "default.v1",
        "assistant_id": "callpilot",
        "language": "en",
        "pipeline": [
            {"name": "WhitespaceTokenizer"},
            {"name": "RegexFeaturizer"},
            {"name": "LexicalSyntacticFeaturizer"},
            {"name": "CountVectorsFeaturizer"},
            {
                "name": "CountVectorsFeaturizer",
                "analyzer": "char_wb",
                "min_ngram": 1,
                "max_ngram": 4,
            },
            # Entities by CRF, intents by a transformer-less DIET: DIET's own TF CRF layer
            # made training ~4x slower on 2 CPU cores for no gain on this small data.
            {"name": "CRFEntityExtractor"},
            {
                "name": "DIETClassifier",
                "epochs": epochs,
                "number_of_transformer_layers": 0,
                "entity_recognition": False,
                "constrain_similarities": True,
            },
            {"name": "EntitySynonymMapper"},
            {"name": "FallbackClassifier", "threshold": 0.3, "ambiguity_threshold": 0.1},
        ],
        "policies": policies,
    }
    return yaml.safe_dump(config, sort_keys=False)


def endpoints_yaml(action_url: str = DEFAULT_ACTION_URL, action_token: str | None = None) -> str:
    """Endpoints file: custom actions are served by callpilot itself, which wants `action_token`; Rasa's
    EndpointConfig sends `token` as the `?token=` query parameter of every action call."""
    endpoint: dict[str, str] = {"url": action_url}
    if action_token:
        endpoint |= {"token": action_token, "token_name": "token"}
    return yaml.safe_dump({"action_endpoint": endpoint}, sort_keys=False)


def credentials_yaml() -> str:
    """Credentials file enabling the REST input channel."""
    return yaml.safe_dump({"rest": None}, sort_keys=False)


def plan_export(sources: list[SourceFile], *, action_url: str = DEFAULT_ACTION_URL, action_token: str | None = None,
                epochs: int = 80) -> ExportPlan:
    """Decide the exported project's files from the data directory's YAML files."""
    files: dict[str, str] = {}
    skipped: list[str] = []
    domains: list[tuple[SourceFile, dict[str, Any]]] = []
    has_stories = False
    for source in sorted(sources, key=lambda s: s.path):
        try:
            doc = yaml.safe_load(source.text)
        except yaml.YAMLError as exc:
            raise ValueError(f"{source.path}: invalid YAML: {exc}") from exc
        kind = classify(doc)
        if kind is FileKind.DATA:
            files[f"data/{source.path}"] = source.text
            has_stories = has_stories or bool(doc.get("stories"))
        elif kind is FileKind.DOMAIN:
            domains.append((source, doc))
        else:
            skipped.append(source.path)
    if len(domains) == 1:
        files["domain.yml"] = domains[0][0].text
    elif domains:
        merged = merge_domains([doc for _, doc in domains])
        files["domain.yml"] = yaml.safe_dump(merged, sort_keys=False, allow_unicode=True)
    files["config.yml"] = config_yaml(with_stories=has_stories, epochs=epochs)
    files["endpoints.yml"] = endpoints_yaml(action_url, action_token)
    files["credentials.yml"] = credentials_yaml()
    return ExportPlan(files=files, skipped=tuple(skipped), has_stories=has_stories)


TRAINING_INPUTS = ("config.yml", "domain.yml", "data/")


def fingerprint(files: Mapping[str, bytes], salt: str = "") -> str:
    """Hash of the files that decide a trained model (config, domain, data) plus a salt."""
    digest = hashlib.sha256(salt.encode())
    for path in sorted(files):
        if path in TRAINING_INPUTS or path.startswith(TRAINING_INPUTS[2]):
            digest.update(path.encode() + b"\0" + files[path] + b"\0")
    return digest.hexdigest()
