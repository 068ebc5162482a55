"""Domain keys of a Rasa YAML file (intents, entities, slots, ...) -> one merged `Domain`."""

from __future__ import annotations

from typing import Protocol, TypeVar

from bot.training_data.domain_items import (
    DomainReader,
    parse_form,
    parse_response,
    parse_session_config,
    parse_slot,
)
from bot.training_data.model import Domain, Location, Problem, SessionConfig
from bot.training_data.yaml_lines import YNode

DOMAIN_KEYS = frozenset(
    {
        "intents",
        "entities",
        "slots",
        "responses",
        "forms",
        "actions",
        "session_config",
        "config",
        "e2e_actions",
    }
)


def parse_domain(root: YNode, path: str) -> tuple[Domain, list[Problem]]:
    """Read the domain keys of one file's top-level mapping."""
    reader = DomainReader(path)
    domain = Domain()
    for key in root.key_names():
        node = root.get(key)
        assert node is not None
        if key == "intents":
            for name, line in reader.names(node, key):
                if name in domain.intents:
                    reader.error(
                        line,
                        f"intent '{name}' is listed twice in the domain",
                        "warning",
                    )
                    continue
                domain.intents.append(name)
                domain.intent_locations[name] = Location(path, line)
        elif key == "entities":
            domain.entities.extend(
                n for n, _ in reader.names(node, key) if n not in domain.entities
            )
        elif key == "actions":
            domain.actions.extend(
                n for n, _ in reader.names(node, key) if n not in domain.actions
            )
        elif key == "slots":
            for name, value, line in _entries(reader, node, key):
                domain.slots[name] = parse_slot(reader, name, value, line)
        elif key == "responses":
            for name, value, line in _entries(reader, node, key):
                domain.responses[name] = parse_response(reader, name, value, line)
        elif key == "forms":
            for name, value, line in _entries(reader, node, key):
                domain.forms[name] = parse_form(reader, name, value, line)
        elif key == "session_config":
            domain.session_config = parse_session_config(reader, node)
    return domain, reader.problems


def _entries(
    reader: DomainReader, node: YNode, key: str
) -> list[tuple[str, YNode, int]]:
    if node.is_null:
        return []
    if not node.is_map:
        reader.error(
            node.line,
            f"'{key}' must be a mapping of name -> definition, not {node.describe()}",
        )
        return []
    return [(str(k.scalar), v, k.line) for k, v in node.pairs]


def merge_domains(parts: list[Domain]) -> tuple[Domain, list[Problem]]:
    """Merge domain files like Rasa: lists are united, for named definitions the first wins."""
    merged = Domain()
    problems: list[Problem] = []
    for part in parts:
        for intent in part.intents:
            if intent not in merged.intents:
                merged.intents.append(intent)
                merged.intent_locations[intent] = part.intent_locations[intent]
        merged.entities.extend(e for e in part.entities if e not in merged.entities)
        merged.actions.extend(a for a in part.actions if a not in merged.actions)
        _merge_named("slot", merged.slots, part.slots, problems)
        _merge_named("response", merged.responses, part.responses, problems)
        _merge_named("form", merged.forms, part.forms, problems)
        if (
            part.session_config != SessionConfig()
            and merged.session_config == SessionConfig()
        ):
            merged.session_config = part.session_config
    return merged, problems


class _Defined(Protocol):
    @property
    def location(self) -> Location: ...


_D = TypeVar("_D", bound=_Defined)


def _merge_named(
    kind: str, merged: dict[str, _D], new: dict[str, _D], problems: list[Problem]
) -> None:
    for name, definition in new.items():
        if name in merged:
            problems.append(
                Problem(
                    definition.location,
                    f"{kind} '{name}' is already defined in {merged[name].location}; "
                    "this definition is ignored",
                    "warning",
                )
            )
            continue
        merged[name] = definition
