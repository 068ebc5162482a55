"""Rasa entity markup in examples: `[text](entity)`, `[text](entity:value)`, `[text]{...}`."""

from __future__ import annotations

import json
import re
from typing import Any

from bot.training_data.model import EntitySpan

_ENTITY_NAME = re.compile(r"^[^\s:()\[\]{}\"']+$")
_DICT_KEYS = ("entity", "value", "role", "group")


class MarkupError(ValueError):
    """An example's entity annotation cannot be read."""


def parse_markup(text: str) -> tuple[str, list[EntitySpan]]:
    """Return the plain text of an annotated example and its entity spans."""
    plain: list[str] = []
    spans: list[EntitySpan] = []
    length = 0
    i = 0
    while i < len(text):
        char = text[i]
        if char == "]":
            raise MarkupError(f"']' at character {i + 1} has no matching '['")
        if char != "[":
            plain.append(char)
            length += 1
            i += 1
            continue
        close = text.find("]", i + 1)
        if close == -1:
            raise MarkupError(f"'[' at character {i + 1} is never closed with ']'")
        entity_text = text[i + 1 : close]
        if "[" in entity_text:
            raise MarkupError(f"'[' at character {i + 1} contains another '[' (nested)")
        if not entity_text.strip():
            raise MarkupError(f"empty entity text '[]' at character {i + 1}")
        annotations, i = _read_annotation(text, close + 1, entity_text)
        spans.extend(
            EntitySpan(length, length + len(entity_text), entity, value, role, group)
            for entity, value, role, group in annotations
        )
        plain.append(entity_text)
        length += len(entity_text)
    return "".join(plain), spans


_Annotation = tuple[str, str, str | None, str | None]


def _read_annotation(
    text: str, at: int, entity_text: str
) -> tuple[list[_Annotation], int]:
    """Read what follows `[entity_text]`; return annotations and the index after it."""
    opener = text[at] if at < len(text) else ""
    closer = {"(": ")", "{": "}", "[": "]"}.get(opener)
    if closer is None:
        raise MarkupError(
            f"'[{entity_text}]' has no entity after it: write "
            f"[{entity_text}](entity_name) or remove the brackets"
        )
    end = text.find(closer, at + 1)
    if end == -1:
        raise MarkupError(
            f"'{opener}' after '[{entity_text}]' is never closed with '{closer}'"
        )
    body = text[at : end + 1]
    if opener == "(":
        return [_parse_short_form(body[1:-1], entity_text)], end + 1
    if opener == "{":
        return [_parse_dict(_json(body, entity_text), entity_text)], end + 1
    items = _json(body, entity_text)
    if not isinstance(items, list) or not items:
        raise MarkupError(
            f"'[{entity_text}]{body}' must be a non-empty list of entity dicts"
        )
    return [_parse_dict(item, entity_text) for item in items], end + 1


def _parse_short_form(spec: str, entity_text: str) -> _Annotation:
    entity, has_value, value = spec.partition(":")
    _check_entity_name(entity, f"[{entity_text}]({spec})")
    if has_value and not value.strip():
        raise MarkupError(f"'[{entity_text}]({spec})' has an empty value after ':'")
    return entity, (value if has_value else entity_text), None, None


def _json(body: str, entity_text: str) -> Any:
    try:
        return json.loads(body)
    except json.JSONDecodeError as err:
        raise MarkupError(
            f"'[{entity_text}]{body}' is not valid JSON: {err.msg} (character {err.pos + 1}); "
            'expected e.g. {"entity": "city", "role": "destination"}'
        ) from None


def _parse_dict(data: Any, entity_text: str) -> _Annotation:
    where = f"[{entity_text}]{json.dumps(data, ensure_ascii=False)}"
    if not isinstance(data, dict):
        raise MarkupError(f"'{where}' must be a JSON object")
    unknown = sorted(set(data) - set(_DICT_KEYS))
    if unknown:
        raise MarkupError(
            f"'{where}' has unknown key(s) {', '.join(unknown)} "
            f"(allowed: {', '.join(_DICT_KEYS)})"
        )
    if "entity" not in data:
        raise MarkupError(f"'{where}' has no \"entity\" key")
    entity = data["entity"]
    if not isinstance(entity, str):
        raise MarkupError(f"'{where}': \"entity\" must be a string")
    _check_entity_name(entity, where)
    fields: dict[str, str | None] = {}
    for key in ("value", "role", "group"):
        raw = data.get(key)
        if (raw is not None and not isinstance(raw, str | int)) or isinstance(raw, bool):
            raise MarkupError(f"'{where}': \"{key}\" must be a string")
        fields[key] = None if raw is None else str(raw)
    return entity, fields["value"] or entity_text, fields["role"], fields["group"]


def _check_entity_name(entity: str, where: str) -> None:
    if not entity:
        raise MarkupError(f"'{where}' has an empty entity name")
    if not _ENTITY_NAME.match(entity):
        raise MarkupError(
            f"'{where}': entity name '{entity}' must not contain spaces, quotes or brackets"
        )
