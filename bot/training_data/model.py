"""Typed objects for the training data trainers edit (Rasa 3.x YAML format).

Loading goes path -> text -> dict -> these objects; every object keeps the
`Location` it came from so that problems can be reported as `file:line`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Location:
    """Where something was defined: a file and a 1-based line (0 if unknown)."""

    path: str
    line: int = 0

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path


@dataclass(frozen=True)
class Problem:
    """One problem found while loading or validating data."""

    location: Location
    message: str
    severity: str = "error"  # "error" | "warning"

    def __str__(self) -> str:
        return f"{self.location}: {self.severity}: {self.message}"


class DataError(Exception):
    """Raised when data cannot be used; carries every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class EntitySpan:
    """An annotated entity inside an example's plain text (character offsets)."""

    start: int
    end: int
    entity: str
    value: str  # the annotated value (`[NYC](city:New York)` -> "New York"), else the text
    role: str | None = None
    group: str | None = None


@dataclass(frozen=True)
class Example:
    """One training utterance: plain text (markup removed), its intent and entities."""

    text: str
    intent: str
    entities: tuple[EntitySpan, ...] = ()
    location: Location = Location("<memory>")
    language: str = "en"  # the language folder it came from (`nlu_data/zh/...`: "zh"); the rest is English


@dataclass(frozen=True)
class RegexFeature:
    name: str  # usually an entity name
    patterns: tuple[str, ...]
    location: Location = Location("<memory>")
    language: str = "en"


@dataclass(frozen=True)
class LookupTable:
    name: str  # usually an entity name
    elements: tuple[str, ...]
    location: Location = Location("<memory>")
    language: str = "en"


@dataclass(frozen=True)
class Synonym:
    value: str  # canonical value
    examples: tuple[str, ...]  # variants that map to it
    location: Location = Location("<memory>")
    example_lines: tuple[int, ...] = ()  # 1-based line of each variant, if known


@dataclass
class NLUData:
    examples: list[Example] = field(default_factory=list)
    synonyms: list[Synonym] = field(default_factory=list)
    regexes: list[RegexFeature] = field(default_factory=list)
    lookups: list[LookupTable] = field(default_factory=list)
    # intent name -> location of its `- intent:` item (first one if split across files)
    intent_locations: dict[str, Location] = field(default_factory=dict)

    @property
    def intents(self) -> list[str]:
        return sorted({e.intent for e in self.examples})

    @property
    def languages(self) -> list[str]:
        """The languages with examples, English first."""
        return sorted({e.language for e in self.examples}, key=lambda lang: (lang != "en", lang))

    def for_language(self, language: str) -> NLUData:
        """The examples, regexes and lookup tables of one language (the base language's regexes and tables
        for the names it has none of); synonyms serve every language."""
        examples = [e for e in self.examples if e.language == language]
        intents = {e.intent for e in examples}
        own_regexes = {r.name for r in self.regexes if r.language == language}
        own_lookups = {t.name for t in self.lookups if t.language == language}
        return NLUData(
            examples, list(self.synonyms),
            [r for r in self.regexes if r.language == language or (r.name not in own_regexes and r.language == "en")],
            [t for t in self.lookups if t.language == language or (t.name not in own_lookups and t.language == "en")],
            {i: loc for i, loc in self.intent_locations.items() if i in intents})

    @property
    def entity_names(self) -> list[str]:
        return sorted({s.entity for e in self.examples for s in e.entities})

    def synonym_map(self) -> dict[str, str]:
        """Lower-cased variant -> canonical value."""
        out: dict[str, str] = {}
        for syn in self.synonyms:
            for variant in syn.examples:
                out[variant.lower()] = syn.value
        return out

    def full_synonym_map(self) -> dict[str, str]:
        """Like Rasa's EntitySynonymMapper: annotations `[NYC](city:New York)` plus `synonym_map()`."""
        out: dict[str, str] = {}
        for example in self.examples:
            for span in example.entities:
                text = example.text[span.start : span.end]
                if text != span.value:
                    out[text.lower()] = span.value
        out.update(self.synonym_map())
        return out


@dataclass(frozen=True)
class SlotMapping:
    type: str  # from_entity | from_text | from_intent | from_trigger_intent | custom
    entity: str | None = None
    intent: tuple[str, ...] = ()
    not_intent: tuple[str, ...] = ()
    value: Any = None
    role: str | None = None
    group: str | None = None
    active_loop: str | None = None  # conditions: [{active_loop: form}]


@dataclass(frozen=True)
class Slot:
    name: str
    type: str  # text | bool | categorical | float | list | any
    mappings: tuple[SlotMapping, ...] = ()
    influence_conversation: bool = True
    initial_value: Any = None
    values: tuple[str, ...] = ()  # categorical
    location: Location = Location("<memory>")


@dataclass(frozen=True)
class ResponseVariant:
    text: str
    condition: tuple[tuple[str, Any], ...] = ()  # ((slot, value), ...)
    buttons: tuple[tuple[str, str], ...] = ()  # ((title, payload), ...)
    channel: str | None = None


@dataclass(frozen=True)
class Response:
    name: str  # utter_...
    variants: tuple[ResponseVariant, ...]
    location: Location = Location("<memory>")


@dataclass(frozen=True)
class Form:
    name: str
    required_slots: tuple[str, ...]
    ignored_intents: tuple[str, ...] = ()
    location: Location = Location("<memory>")


@dataclass(frozen=True)
class SessionConfig:
    session_expiration_time: float = 60.0  # minutes
    carry_over_slots_to_new_session: bool = True


@dataclass
class Domain:
    intents: list[str] = field(default_factory=list)
    entities: list[str] = field(default_factory=list)
    slots: dict[str, Slot] = field(default_factory=dict)
    responses: dict[str, Response] = field(default_factory=dict)
    forms: dict[str, Form] = field(default_factory=dict)
    actions: list[str] = field(default_factory=list)
    session_config: SessionConfig = field(default_factory=SessionConfig)
    # language -> response name -> the response in that language (from `<data>/<language>/` files)
    translations: dict[str, dict[str, Response]] = field(default_factory=dict)
    # intent name -> location where the domain lists it (for messages)
    intent_locations: dict[str, Location] = field(default_factory=dict)


@dataclass(frozen=True)
class RuleStep:
    """One step of a rule or story: exactly one of the fields is set."""

    intent: str | None = None
    action: str | None = None
    active_loop: str | None = None  # `active_loop: null` is stored as "null"
    slot_was_set: tuple[tuple[str, Any], ...] = ()
    entities: tuple[tuple[str, Any], ...] = ()
    location: Location = Location("<memory>")
    user_text: str | None = None  # end-to-end `user:` text (may come with `intent:`)
    bot_text: str | None = None  # end-to-end `bot:` text
    checkpoint: str | None = None  # story `checkpoint:` name
    alternatives: tuple[RuleStep, ...] = ()  # story `or:` (each alternative one step)


@dataclass(frozen=True)
class Rule:
    name: str
    steps: tuple[RuleStep, ...]
    condition: tuple[RuleStep, ...] = ()
    conversation_start: bool = False
    wait_for_user_input: bool = True
    is_story: bool = False
    location: Location = Location("<memory>")


@dataclass
class Project:
    """Everything loaded from one data directory (e.g. `nlu_data/`)."""

    root: str
    nlu: NLUData
    domain: Domain
    rules: list[Rule]
    files: list[str]  # every file read, relative to the working directory
    warnings: list[Problem] = field(default_factory=list)
    # YAML files below root that hold no Rasa data (config.yml, ivr.yml, ...)
    skipped_files: list[str] = field(default_factory=list)
