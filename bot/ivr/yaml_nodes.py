"""Reading composed PyYAML nodes with 1-based line numbers, collecting problems as `file:line`."""

from __future__ import annotations

import re
from typing import Any

from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode

from bot.training_data.model import Location, Problem

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class NodeReader:
    """Typed accessors for YAML nodes; each reports a problem and returns None when a value is wrong."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[Problem] = []
        self._constructor = SafeConstructor()

    # Scalars

    def value(self, node: Node) -> Any:
        """The Python value of a node (as `yaml.safe_load` would build it)."""
        return self._constructor.construct_object(node, deep=True)

    def text(self, node: Node, what: str, allow_empty: bool = False) -> str | None:
        value = self.value(node) if isinstance(node, ScalarNode) else None
        if not isinstance(value, str) or (not value.strip() and not allow_empty):
            self.error(node, f"{what} must be a non-empty string")
            return None
        return value

    def name(self, node: Node, what: str) -> str | None:
        value = self.text(node, what)
        if value is not None and not NAME.match(value):
            self.error(node, f"{what} {value!r} is not a valid name (letters, digits, _)")
            return None
        return value

    def number(
        self, node: Node, what: str, *, minimum: float, maximum: float = 3600, integer: bool = False
    ) -> float | None:
        value = self.value(node) if isinstance(node, ScalarNode) else None
        number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
        if number is None or (integer and not isinstance(number, int)) or not minimum <= number <= maximum:
            kind = "an integer" if integer else "a number"
            self.error(node, f"{what} must be {kind} between {minimum:g} and {maximum:g}")
            return None
        return number if integer else float(number)

    # Structure

    def items(self, node: Node, what: str) -> list[tuple[ScalarNode, Node]]:
        if not isinstance(node, MappingNode):
            self.error(node, f"{what} must be a mapping")
            return []
        items: list[tuple[ScalarNode, Node]] = []
        seen: set[str] = set()
        for key, value in node.value:
            if not isinstance(key, ScalarNode):
                self.error(key, f"keys of {what} must be plain strings")
            elif key.value in seen:
                self.error(key, f"duplicate key {key.value!r} in {what}")
            else:
                seen.add(key.value)
                items.append((key, value))
        return items

    def mapping(self, node: Node, what: str, allowed: tuple[str, ...] | None) -> dict[str, Node]:
        fields: dict[str, Node] = {}
        for key, value in self.items(node, what):
            if allowed is not None and key.value not in allowed:
                self.error(key, f"unknown key {key.value!r} in {what} (allowed: {', '.join(allowed)})")
            else:
                fields[key.value] = value
        return fields

    def at(self, node: Node | None) -> Location:
        return Location(self.path, node.start_mark.line + 1 if node is not None else 0)

    def error(self, node: Node | None, message: str) -> None:
        self.problems.append(Problem(self.at(node), message))
