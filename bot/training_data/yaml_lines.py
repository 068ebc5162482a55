"""YAML text -> a tree of `YNode`s that remembers the 1-based line of every value."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

import yaml

from bot.training_data.model import Location, Problem

Scalar = str | int | float | bool | None

try:
    _BaseLoader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # PyYAML built without libyaml
    _BaseLoader = yaml.SafeLoader

_BOOL_TAG = "tag:yaml.org,2002:bool"


class _Yaml12Loader(_BaseLoader):  # type: ignore[valid-type,misc]
    """Safe loader whose booleans follow YAML 1.2 (as Rasa's ruamel loader does).

    PyYAML reads `yes`/`no`/`on`/`off` as booleans (YAML 1.1), which would turn a
    categorical slot value `no` into `False`.
    """

    yaml_implicit_resolvers: ClassVar[dict[str, list[tuple[str, re.Pattern[str]]]]] = {
        first: [(tag, rx) for tag, rx in resolvers if tag != _BOOL_TAG]
        for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
    }


_Yaml12Loader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


@dataclass(frozen=True)
class YNode:
    """A YAML value (scalar, list or mapping) and where it starts (1-based line)."""

    kind: str  # "scalar" | "seq" | "map"
    line: int
    column: int = 1
    scalar: Scalar = None
    style: str = ""  # scalar style: "|" literal block, ">" folded, "'" or '"' quoted
    items: tuple[YNode, ...] = ()
    pairs: tuple[tuple[YNode, YNode], ...] = ()

    @property
    def is_map(self) -> bool:
        return self.kind == "map"

    @property
    def is_seq(self) -> bool:
        return self.kind == "seq"

    @property
    def is_str(self) -> bool:
        return self.kind == "scalar" and isinstance(self.scalar, str)

    @property
    def is_null(self) -> bool:
        return self.kind == "scalar" and self.scalar is None

    def key_names(self) -> list[str]:
        """Mapping keys in file order (empty for non-mappings)."""
        return [str(k.scalar) for k, _ in self.pairs]

    def get(self, key: str) -> YNode | None:
        """The value stored under `key` in a mapping, or None."""
        for k, v in self.pairs:
            if str(k.scalar) == key:
                return v
        return None

    def key_line(self, key: str) -> int:
        """Line of `key` in a mapping (the mapping's own line if absent)."""
        for k, _ in self.pairs:
            if str(k.scalar) == key:
                return k.line
        return self.line

    def text(self) -> str:
        """A scalar as text (numbers and booleans converted); "" for null."""
        if self.scalar is None:
            return ""
        if isinstance(self.scalar, bool):
            return "true" if self.scalar else "false"
        return str(self.scalar)

    def to_python(self) -> Any:
        """Plain Python value (dict/list/scalar) without line information."""
        if self.kind == "map":
            return {str(k.scalar): v.to_python() for k, v in self.pairs}
        if self.kind == "seq":
            return [item.to_python() for item in self.items]
        return self.scalar

    def describe(self) -> str:
        """Human name of the value's type, for messages ("a list", "a number"...)."""
        if self.kind == "map":
            return "a mapping"
        if self.kind == "seq":
            return "a list"
        if self.scalar is None:
            return "empty"
        if isinstance(self.scalar, bool):
            return "a boolean"
        if isinstance(self.scalar, int | float):
            return "a number"
        return "a string"

    def block_lines(self) -> list[tuple[str, int]]:
        """Lines of a string scalar with the 1-based line each starts on.

        Exact for literal blocks (`|`); other styles report the value's own line.
        """
        text = self.text()
        lines = text.splitlines()
        if self.style == "|":
            return [(line, self.line + 1 + i) for i, line in enumerate(lines)]
        return [(line, self.line) for line in lines]


def parse_yaml(text: str, path: str) -> tuple[YNode | None, list[Problem]]:
    """Parse YAML text; return its root node (None if empty) and any problems."""
    loader = _Yaml12Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None, []
        problems: list[Problem] = []
        return _convert(loader, root, path, problems), problems
    except yaml.MarkedYAMLError as err:
        return None, [_yaml_error(err, path)]
    except yaml.YAMLError as err:
        return None, [Problem(Location(path), f"invalid YAML: {err}")]
    finally:
        loader.dispose()


def _yaml_error(err: yaml.MarkedYAMLError, path: str) -> Problem:
    mark = err.problem_mark or err.context_mark
    line = mark.line + 1 if mark is not None else 0
    reason = err.problem or err.context or "cannot be parsed"
    if mark is not None:
        reason = f"{reason} (column {mark.column + 1})"
    context = err.context_mark
    if (
        err.problem
        and err.context
        and context is not None
        and context.line != getattr(mark, "line", None)
    ):
        reason = f"{reason}, {err.context} started on line {context.line + 1}"
    if "'\\t'" in reason:
        reason += "; indent with spaces, YAML does not allow tabs"
    return Problem(Location(path, line), f"invalid YAML: {reason}")


def _convert(
    loader: yaml.SafeLoader, node: yaml.Node, path: str, problems: list[Problem]
) -> YNode:
    line, column = node.start_mark.line + 1, node.start_mark.column + 1
    if isinstance(node, yaml.MappingNode):
        pairs: list[tuple[YNode, YNode]] = []
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = _convert(loader, key_node, path, problems)
            if key.kind != "scalar":
                problems.append(
                    Problem(
                        Location(path, key.line), "a mapping key must be a plain name"
                    )
                )
                continue
            name = str(key.scalar)
            if name in seen:
                problems.append(
                    Problem(
                        Location(path, key.line),
                        f"key '{name}' appears twice in the same mapping "
                        f"(first on line {seen[name]}); the second would silently win",
                    )
                )
                continue
            seen[name] = key.line
            pairs.append((key, _convert(loader, value_node, path, problems)))
        return YNode("map", line, column, pairs=tuple(pairs))
    if isinstance(node, yaml.SequenceNode):
        items = tuple(_convert(loader, item, path, problems) for item in node.value)
        return YNode("seq", line, column, items=items)
    assert isinstance(node, yaml.ScalarNode)
    value = loader.construct_object(node, deep=True)
    if not isinstance(value, str | int | float | bool) and value is not None:
        value = str(node.value)  # dates, binary...: keep the text as written
    return YNode("scalar", line, column, scalar=value, style=node.style or "")
