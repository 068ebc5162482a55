"""The `nlu:` section of a Rasa YAML file -> `NLUData` (intents, synonyms, regexes, lookups)."""

from __future__ import annotations

import re

from bot.training_data.markup import MarkupError, parse_markup
from bot.training_data.model import (
    Example,
    Location,
    LookupTable,
    NLUData,
    Problem,
    RegexFeature,
    Synonym,
)
from bot.training_data.yaml_lines import YNode

_ITEM_KEYS: dict[str, frozenset[str]] = {
    "intent": frozenset({"intent", "examples", "metadata"}),
    "synonym": frozenset({"synonym", "examples"}),
    "regex": frozenset({"regex", "examples"}),
    "lookup": frozenset({"lookup", "examples"}),
}

_Line = tuple[str, int]


def parse_nlu(section: YNode, path: str) -> tuple[NLUData, list[Problem]]:
    """Read the value of a top-level `nlu:` key."""
    data = NLUData()
    problems: list[Problem] = []
    if section.is_null:
        return data, problems
    if not section.is_seq:
        problems.append(
            _error(
                path,
                section.line,
                f"'nlu' must be a list of items, not {section.describe()}",
            )
        )
        return data, problems
    for item in section.items:
        _parse_item(item, path, data, problems)
    return data, problems


def _error(path: str, line: int, message: str, severity: str = "error") -> Problem:
    return Problem(Location(path, line), message, severity)


def _parse_item(item: YNode, path: str, data: NLUData, problems: list[Problem]) -> None:
    if not item.is_map:
        problems.append(
            _error(
                path,
                item.line,
                f"nlu item must be a mapping like '- intent: name', not {item.describe()}",
            )
        )
        return
    kinds = [key for key in _ITEM_KEYS if item.get(key) is not None]
    if len(kinds) != 1:
        found = "none" if not kinds else " and ".join(kinds)
        problems.append(
            _error(
                path,
                item.line,
                f"nlu item needs exactly one of intent, synonym, regex, lookup (found {found}; "
                f"keys: {', '.join(item.key_names())})",
            )
        )
        return
    kind = kinds[0]
    for key in item.key_names():
        if key not in _ITEM_KEYS[kind]:
            allowed = ", ".join(sorted(_ITEM_KEYS[kind] - {kind}))
            problems.append(
                _error(
                    path,
                    item.key_line(key),
                    f"unknown key '{key}' in {kind} item (allowed: {allowed})",
                )
            )
    name_node = item.get(kind)
    assert name_node is not None
    if name_node.kind != "scalar" or not name_node.text().strip():
        problems.append(
            _error(
                path,
                name_node.line,
                f"{kind} name must be a non-empty string, not {name_node.describe()}",
            )
        )
        return
    name = name_node.text().strip()
    lines = _example_lines(item.get("examples"), kind, name, item.line, path, problems)
    location = Location(path, item.line)
    if kind == "intent":
        data.intent_locations.setdefault(name, location)
        for text, line in lines:
            _add_example(text, name, Location(path, line), data, problems)
    elif kind == "synonym":
        if not lines:
            problems.append(
                _error(
                    path, item.line, f"synonym '{name}' lists no variants", "warning"
                )
            )
        data.synonyms.append(
            Synonym(
                name, tuple(t for t, _ in lines), location, tuple(n for _, n in lines)
            )
        )
    elif kind == "regex":
        if not lines:
            problems.append(_error(path, item.line, f"regex '{name}' has no patterns"))
        for pattern, line in lines:
            _check_regex(pattern, name, path, line, problems)
        data.regexes.append(
            RegexFeature(name, tuple(text for text, _ in lines), location)
        )
    else:
        if not lines:
            problems.append(_error(path, item.line, f"lookup table '{name}' is empty"))
        data.lookups.append(
            LookupTable(name, tuple(text for text, _ in lines), location)
        )


def _add_example(
    text: str, intent: str, location: Location, data: NLUData, problems: list[Problem]
) -> None:
    try:
        plain, spans = parse_markup(text)
    except MarkupError as err:
        problems.append(
            Problem(location, f'bad entity markup in example "{text}": {err}')
        )
        return
    data.examples.append(Example(plain.strip(), intent, tuple(spans), location))


def _check_regex(
    pattern: str, name: str, path: str, line: int, problems: list[Problem]
) -> None:
    try:
        re.compile(pattern)
    except re.error as err:
        problems.append(
            _error(
                path,
                line,
                f"invalid regex pattern '{pattern}' in regex '{name}': {err}",
            )
        )


def _example_lines(
    node: YNode | None,
    kind: str,
    name: str,
    item_line: int,
    path: str,
    problems: list[Problem],
) -> list[_Line]:
    """The `examples:` of an item as (text, line) pairs; problems for anything malformed."""
    what = f"{kind} '{name}'"
    if node is None:
        problems.append(_error(path, item_line, f"{what} has no 'examples:'"))
        return []
    if node.is_str:
        return _block_examples(node, what, path, problems)
    if node.is_seq and kind == "intent":
        return _listed_examples(node, what, path, problems)
    if node.is_null:  # emptiness is reported per kind (too few examples, empty lookup)
        return []
    problems.append(
        _error(
            path,
            node.line,
            f"examples of {what} must be a block string of '- ' lines (examples: |), "
            f"not {node.describe()}",
        )
    )
    return []


def _block_examples(
    node: YNode, what: str, path: str, problems: list[Problem]
) -> list[_Line]:
    out: list[_Line] = []
    for raw, line in node.block_lines():
        stripped = raw.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            problems.append(
                _error(
                    path,
                    line,
                    f"'{stripped}' inside the examples block of {what} is not a YAML comment "
                    "and is ignored; move it above 'examples:'",
                    "warning",
                )
            )
            continue
        if not stripped.startswith("-"):
            problems.append(
                _error(
                    path,
                    line,
                    f"example line '{stripped}' of {what} must start with '- '",
                )
            )
            continue
        text = stripped[1:].strip()
        if not text:
            problems.append(_error(path, line, f"empty example '-' in {what}"))
            continue
        out.append((text, line))
    return out


def _listed_examples(
    node: YNode, what: str, path: str, problems: list[Problem]
) -> list[_Line]:
    """Rasa 3's object form: `examples:` is a list of `- text: ...` (with `metadata`)."""
    out: list[_Line] = []

    def report(line: int, message: str) -> None:
        problems.append(_error(path, line, message))

    for entry in node.items:
        if not entry.is_map:  # Rasa's schema rejects mixing the two forms
            report(
                entry.line,
                f"listed examples of {what} must all be '- text: ...' mappings, not {entry.describe()}",
            )
            continue
        extra = [key for key in entry.key_names() if key not in ("text", "metadata")]
        if extra:
            report(
                entry.line,
                f"unknown key(s) {', '.join(extra)} in an example of {what} (allowed: text, metadata)",
            )
        text_node = entry.get("text")
        if (
            text_node is None
            or text_node.kind != "scalar"
            or not text_node.text().strip()
        ):
            report(
                entry.line, f"each listed example of {what} needs a non-empty 'text:'"
            )
            continue
        line = text_node.line + 1 if text_node.style == "|" else text_node.line
        out.append((text_node.text().strip(), line))
    return out
