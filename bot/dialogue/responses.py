"""Renders domain responses: picks a variant and fills `{slot}` templates."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bot.dialogue.languages import SLOT_VALUE_NAMES
from bot.training_data.model import Domain, ResponseVariant

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def format_value(value: Any) -> str:
    """How a slot value reads inside a sentence."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(v) for v in value)
    return str(value)


def fill_template(text: str, values: Mapping[str, Any], known: set[str]) -> str:
    """Replace `{name}` with values; unknown names that are slots read as empty."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in values:
            return format_value(values[name])
        return "" if name in known else match.group(0)

    return re.sub(r"\s{2,}", " ", _PLACEHOLDER.sub(replace, text)).strip()


def _matches(variant: ResponseVariant, slots: Mapping[str, Any], channel: str) -> bool:
    if variant.channel is not None and variant.channel != channel:
        return False
    return all(slots.get(name) == value for name, value in variant.condition)


class ResponseRenderer:
    """Turns `utter_*` names into caller-ready text."""

    def __init__(self, domain: Domain) -> None:
        self._domain = domain
        self._slot_names = set(domain.slots)

    def has(self, name: str) -> bool:
        return name in self._domain.responses

    def choose(
        self, name: str, slots: Mapping[str, Any], *, channel: str = "", times_said: int = 0,
        language: str | None = None,
    ) -> ResponseVariant | None:
        """Conditional variants that match win; rotate through variants on repeats. The response in
        `language` if the data has it, else the base (English) one."""
        response = self._domain.translations.get(language or "", {}).get(name) or self._domain.responses.get(name)
        if response is None:
            return None
        candidates = [v for v in response.variants if _matches(v, slots, channel)]
        conditional = [v for v in candidates if v.condition]
        pool = conditional or candidates
        if not pool:
            return None
        return pool[times_said % len(pool)]

    def render(
        self,
        name: str,
        slots: Mapping[str, Any],
        *,
        channel: str = "",
        times_said: int = 0,
        extra: Mapping[str, Any] | None = None,
        language: str | None = None,
    ) -> str | None:
        variant = self.choose(name, slots, channel=channel, times_said=times_said, language=language)
        if variant is None:
            return None
        values = {**slots, **(extra or {})}
        names = SLOT_VALUE_NAMES.get(language or "", {})
        values = {k: names[k].get(str(v), v) if k in names else v for k, v in values.items()}
        return fill_template(variant.text, values, self._slot_names)
