"""One definition of a domain (a slot, response, form, session config) -> typed object."""

from __future__ import annotations

from typing import Any

from bot.training_data.model import (
    Form,
    Location,
    Problem,
    Response,
    ResponseVariant,
    SessionConfig,
    Slot,
    SlotMapping,
)
from bot.training_data.yaml_lines import YNode

SLOT_TYPES = frozenset({"text", "bool", "categorical", "float", "list", "any"})
MAPPING_TYPES = frozenset(
    {"from_entity", "from_text", "from_intent", "from_trigger_intent", "custom"}
)
_RICH_RESPONSE_KEYS = (
    "custom",
    "image",
    "attachment",
    "buttons",
    "quick_replies",
    "elements",
)


class DomainReader:
    """Collects problems while reading one domain file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[Problem] = []

    def error(self, line: int, message: str, severity: str = "error") -> None:
        self.problems.append(Problem(Location(self.path, line), message, severity))

    def names(self, node: YNode, key: str) -> list[tuple[str, int]]:
        """A list whose items are names, or one-key mappings `- name: {options}`."""
        if node.is_null:
            return []
        if not node.is_seq:
            self.error(node.line, f"'{key}' must be a list, not {node.describe()}")
            return []
        out: list[tuple[str, int]] = []
        for item in node.items:
            if item.is_map and len(item.pairs) == 1:
                out.append((item.key_names()[0], item.line))
            elif item.kind == "scalar" and item.text().strip():
                out.append((item.text().strip(), item.line))
            else:
                self.error(
                    item.line,
                    f"each item of '{key}' must be a name, not {item.describe()}",
                )
        return out

    def strings(self, node: YNode | None, what: str) -> tuple[str, ...]:
        """A string or a list of strings (as in `intent:` of a slot mapping)."""
        if node is None or node.is_null:
            return ()
        if node.kind == "scalar":
            return (node.text(),)
        if node.is_seq and all(item.kind == "scalar" for item in node.items):
            return tuple(item.text() for item in node.items)
        self.error(
            node.line,
            f"{what} must be a name or a list of names, not {node.describe()}",
        )
        return ()


def parse_slot(reader: DomainReader, name: str, node: YNode, line: int) -> Slot:
    location = Location(reader.path, line)
    if not node.is_map:
        reader.error(
            line, f"slot '{name}' must be a mapping with 'type' and 'mappings'"
        )
        return Slot(name, "any", location=location)
    type_node = node.get("type")
    slot_type = type_node.text() if type_node is not None else ""
    if type_node is None:
        reader.error(line, f"slot '{name}' has no 'type'")
    elif (
        slot_type not in SLOT_TYPES and "." not in slot_type
    ):  # "." = custom slot class
        reader.error(
            type_node.line,
            f"slot '{name}' has unknown type '{slot_type}' (use one of {', '.join(sorted(SLOT_TYPES))})",
        )
    values = reader.strings(node.get("values"), f"values of slot '{name}'")
    if slot_type == "categorical" and not values:
        reader.error(line, f"categorical slot '{name}' lists no 'values'")
    mappings_node = node.get("mappings")
    mappings: list[SlotMapping] = []
    if mappings_node is None:
        reader.error(
            line,
            f"slot '{name}' has no 'mappings' (required since Rasa 3.0; use '- type: custom' if an action sets it)",
        )
    elif not mappings_node.is_seq:
        reader.error(
            mappings_node.line,
            f"'mappings' of slot '{name}' must be a list, not {mappings_node.describe()}",
        )
    else:
        mappings = [
            m
            for m in (_mapping(reader, name, item) for item in mappings_node.items)
            if m
        ]
    influence = node.get("influence_conversation")
    initial = node.get("initial_value")
    return Slot(
        name,
        slot_type or "any",
        tuple(mappings),
        influence_conversation=bool(influence.scalar)
        if influence is not None
        else True,
        initial_value=initial.to_python() if initial is not None else None,
        values=values,
        location=location,
    )


def _mapping(reader: DomainReader, slot: str, node: YNode) -> SlotMapping | None:
    type_node = node.get("type") if node.is_map else None
    if type_node is None or type_node.text() not in MAPPING_TYPES:
        found = f"'{type_node.text()}'" if type_node is not None else "none"
        reader.error(
            node.line,
            f"mapping of slot '{slot}' needs a type from {', '.join(sorted(MAPPING_TYPES))} (found {found})",
        )
        return None
    kind = type_node.text()
    entity = node.get("entity")
    if kind == "from_entity" and (entity is None or not entity.text()):
        reader.error(node.line, f"from_entity mapping of slot '{slot}' has no 'entity'")
    active_loop = None
    conditions = node.get("conditions")
    for condition in (
        conditions.items if conditions is not None and conditions.is_seq else ()
    ):
        loop = condition.get("active_loop")
        if loop is not None:
            active_loop = loop.text() or "null"
    value = node.get("value")

    def text_of(key: str) -> str | None:
        child = node.get(key)
        return child.text() if child is not None and not child.is_null else None

    return SlotMapping(
        kind,
        entity=entity.text() if entity is not None and not entity.is_null else None,
        intent=reader.strings(
            node.get("intent"), f"'intent' of a mapping of slot '{slot}'"
        ),
        not_intent=reader.strings(
            node.get("not_intent"), f"'not_intent' of a mapping of slot '{slot}'"
        ),
        value=value.to_python() if value is not None else None,
        role=text_of("role"),
        group=text_of("group"),
        active_loop=active_loop,
    )


def parse_response(reader: DomainReader, name: str, node: YNode, line: int) -> Response:
    location = Location(reader.path, line)
    if not name.startswith("utter_"):
        reader.error(
            line,
            f"response '{name}' should start with 'utter_' to be usable as an action",
            "warning",
        )
    if not node.is_seq or not node.items:
        reader.error(
            line,
            f"response '{name}' must be a non-empty list of variants ('- text: ...')",
        )
        return Response(name, (), location)
    variants: list[ResponseVariant] = []
    for item in node.items:
        if not item.is_map:
            reader.error(
                item.line,
                f"variant of response '{name}' must be a mapping like '- text: ...', not {item.describe()}",
            )
            continue
        text = item.get("text")
        if (text is None or not text.text().strip()) and not any(
            item.get(k) for k in _RICH_RESPONSE_KEYS
        ):
            reader.error(item.line, f"variant of response '{name}' has no 'text'")
        channel = item.get("channel")
        variants.append(
            ResponseVariant(
                text.text() if text is not None else "",
                condition=_conditions(item.get("condition")),
                buttons=_buttons(item.get("buttons")),
                channel=channel.text() if channel is not None else None,
            )
        )
    return Response(name, tuple(variants), location)


def _conditions(node: YNode | None) -> tuple[tuple[str, Any], ...]:
    if node is None or not node.is_seq:
        return ()
    out: list[tuple[str, Any]] = []
    for item in node.items:
        slot, value = item.get("name"), item.get("value")
        if slot is not None:
            out.append((slot.text(), value.to_python() if value is not None else None))
    return tuple(out)


def _buttons(node: YNode | None) -> tuple[tuple[str, str], ...]:
    if node is None or not node.is_seq:
        return ()
    out: list[tuple[str, str]] = []
    for item in node.items:
        title, payload = item.get("title"), item.get("payload")
        out.append((title.text() if title else "", payload.text() if payload else ""))
    return tuple(out)


def parse_form(reader: DomainReader, name: str, node: YNode, line: int) -> Form:
    location = Location(reader.path, line)
    required = node.get("required_slots") if node.is_map else None
    if required is None:
        reader.error(line, f"form '{name}' has no 'required_slots'")
        slots: tuple[str, ...] = ()
    elif required.is_map:  # Rasa 2.x style: slot name -> mappings
        reader.error(
            required.line,
            f"'required_slots' of form '{name}' is a mapping (Rasa 2 style); Rasa 3 expects a list of slot names",
            "warning",
        )
        slots = tuple(required.key_names())
    else:
        slots = reader.strings(required, f"'required_slots' of form '{name}'")
    ignored = reader.strings(
        node.get("ignored_intents") if node.is_map else None,
        f"'ignored_intents' of form '{name}'",
    )
    return Form(name, slots, ignored, location)


def parse_session_config(reader: DomainReader, node: YNode) -> SessionConfig:
    default = SessionConfig()
    if not node.is_map:
        return default
    expiry = node.get("session_expiration_time")
    carry = node.get("carry_over_slots_to_new_session")
    minutes = default.session_expiration_time
    if expiry is not None:
        if (
            isinstance(expiry.scalar, int | float)
            and not isinstance(expiry.scalar, bool)
            and expiry.scalar >= 0
        ):
            minutes = float(expiry.scalar)
        else:
            reader.error(
                expiry.line, "session_expiration_time must be a number of minutes >= 0"
            )
    carry_over = default.carry_over_slots_to_new_session
    if carry is not None:
        if isinstance(carry.scalar, bool):
            carry_over = carry.scalar
        else:
            reader.error(
                carry.line, "carry_over_slots_to_new_session must be true or false"
            )
    return SessionConfig(minutes, carry_over)
