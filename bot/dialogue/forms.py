"""Filling slots from a parsed message, validating them, and walking a form's slots."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from bot.dialogue.validation import Validator, spoken_digits, validator_for
from bot.training_data.model import Domain, Form, Slot, SlotMapping

_TRUE = {"true", "yes", "y", "1", "yeah", "yep", "correct", "right"}
_FALSE = {"false", "no", "n", "0", "nope", "wrong"}


@dataclass(frozen=True)
class Extraction:
    """Slot values found in one message, and values that failed validation."""

    values: dict[str, Any] = field(default_factory=dict)
    invalid: dict[str, Any] = field(default_factory=dict)
    guessed: frozenset[str] = frozenset()  # slots filled from a bare answer, not the NLU


@dataclass(frozen=True)
class FormContext:
    """What slot filling depends on besides the message."""

    active_form: str | None
    requested_slot: str | None
    today: date
    free_text_slots: tuple[str, ...] = ()
    last_action: str | None = None  # the bot's latest question: a yes/no answers only that one


def coerce(slot: Slot, value: Any) -> tuple[bool, Any]:
    """Convert a raw value to the slot's type: (ok, value)."""
    if value is None:
        return True, None
    if slot.type == "bool":
        if isinstance(value, bool):
            return True, value
        text = str(value).strip().lower()
        return (True, True) if text in _TRUE else (True, False) if text in _FALSE else (False, None)
    if slot.type == "float":
        try:
            return True, float(value)
        except (TypeError, ValueError):
            return False, None
    if slot.type == "categorical" and slot.values:
        for allowed in slot.values:
            if str(value).strip().lower() == str(allowed).lower():
                return True, allowed
        return False, None
    if slot.type == "list":
        return True, list(value) if isinstance(value, (list, tuple)) else [value]
    if slot.type == "text":
        return True, str(value)
    return True, value


def _entity_value(mapping: SlotMapping, entities: Sequence[Mapping[str, Any]]) -> Any:
    for entity in entities:
        if entity.get("entity") != mapping.entity:
            continue
        if mapping.role is not None and entity.get("role") != mapping.role:
            continue
        if mapping.group is not None and entity.get("group") != mapping.group:
            continue
        return entity.get("value")
    return None


def _intent_allowed(mapping: SlotMapping, intent: str) -> bool:
    if mapping.intent and intent not in mapping.intent:
        return False
    return intent not in mapping.not_intent


def _raw_value(
    name: str, mapping: SlotMapping, parse: Mapping[str, Any], ctx: FormContext
) -> tuple[bool, Any]:
    """(found, value) for one mapping; from_text/intent only fill the requested slot."""
    intent = str((parse.get("intent") or {}).get("name") or "")
    if not _intent_allowed(mapping, intent):
        return False, None
    if mapping.active_loop is not None and mapping.active_loop != ctx.active_form:
        return False, None
    requested = ctx.active_form is not None and ctx.requested_slot == name
    if mapping.type == "from_entity":
        value = _entity_value(mapping, parse.get("entities") or [])
        return value is not None, value
    if mapping.type == "from_text" and requested:
        return True, parse.get("text", "")
    # A yes or a no fills a slot only when it answers that slot's question (the form asks for it, or the
    # bot's latest action was `utter_<slot>` / `utter_ask_<slot>`), never a slot of another question.
    asked = ctx.last_action in (f"utter_{name}", f"utter_ask_{name}")
    if mapping.type == "from_intent" and mapping.intent and (requested or (asked and not mapping.active_loop)):
        return True, mapping.value
    return False, None


def extract_slots(
    domain: Domain,
    parse: Mapping[str, Any],
    ctx: FormContext,
    validators: Mapping[str, Validator],
) -> Extraction:
    """Every slot value this message provides, validated and converted to its type."""
    values: dict[str, Any] = {}
    invalid: dict[str, Any] = {}
    guessed: set[str] = set()
    text = str(parse.get("text", ""))
    for name, slot in domain.slots.items():
        found, raw = False, None
        for mapping in slot.mappings:
            found, raw = _raw_value(name, mapping, parse, ctx)
            if found:
                break
        validator = validator_for(name, dict(validators))
        requested = bool(ctx.active_form) and ctx.requested_slot == name
        if found and validator is not None and raw is not None:
            cleaned = validator(raw, ctx.today)
            if cleaned is None and requested:
                # The NLU may tag only part of it ("dot com"); try the whole answer.
                cleaned = validator(text, ctx.today)
            if cleaned is None:
                invalid[name] = raw
                continue
            raw = cleaned
        elif not found and requested and validator is not None:
            # Voice callers often just say the number; the NLU may not tag it.
            raw = validator(text, ctx.today)
            found = raw is not None
            if not found and (digits := spoken_digits(text)):
                invalid[name] = digits  # they said a number, just not a valid one
        elif not found and requested and name in ctx.free_text_slots:
            raw = short_answer(text)
            found = raw is not None
            if found:
                guessed.add(name)
        if not found:
            continue
        ok, value = coerce(slot, raw)
        if ok:
            values[name] = value
        else:
            invalid[name] = raw
    return Extraction(values, invalid, frozenset(guessed))


_LEADING_FILLERS = re.compile(
    r"^(?:(?:uh|um|er|well|so|it's|it is|its|i'm in|i am in|in|near|the|a|an|my|for|to|"
    r"yes|yeah|okay|ok)\b[\s,]*)+", re.IGNORECASE)


def short_answer(text: str, max_words: int = 4) -> str | None:
    """A bare answer like "Boston" or "the fridge" (fillers dropped); None if it's a sentence."""
    answer = _LEADING_FILLERS.sub("", text.strip()).strip(" .,!?")
    words = answer.split()
    if not words or len(words) > max_words or not any(c.isalpha() for c in answer):
        return None
    return answer


def trigger_intent_values(domain: Domain, form: str, intent: str) -> dict[str, Any]:
    """Values of `from_trigger_intent` mappings when `intent` activates `form`."""
    out: dict[str, Any] = {}
    for name, slot in domain.slots.items():
        for mapping in slot.mappings:
            if mapping.type == "from_trigger_intent" and intent in mapping.intent and (
                mapping.active_loop in (None, form)
            ):
                out[name] = mapping.value
    return out


def next_slot(form: Form, slots: Mapping[str, Any]) -> str | None:
    """The first required slot still empty, or None when the form is complete."""
    for name in form.required_slots:
        if slots.get(name) is None:
            return name
    return None
