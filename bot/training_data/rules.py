"""The `rules:` and `stories:` sections of a Rasa YAML file -> `Rule`s."""

from __future__ import annotations

from typing import Any

from bot.training_data.model import Location, Problem, Rule, RuleStep
from bot.training_data.yaml_lines import YNode

_STEP_KEYS = (
    "intent",
    "user",
    "action",
    "bot",
    "active_loop",
    "slot_was_set",
    "checkpoint",
    "or",
)
_RULE_KEYS = frozenset(
    {
        "rule",
        "steps",
        "condition",
        "conversation_start",
        "wait_for_user_input",
        "metadata",
    }
)
_STORY_KEYS = frozenset({"story", "steps", "metadata"})


def parse_rules(
    section: YNode, path: str, *, stories: bool = False
) -> tuple[list[Rule], list[Problem]]:
    """Read the value of a top-level `rules:` (or `stories:`) key."""
    problems: list[Problem] = []
    key = "stories" if stories else "rules"
    if section.is_null:
        return [], problems
    if not section.is_seq:
        problems.append(
            Problem(
                Location(path, section.line),
                f"'{key}' must be a list, not {section.describe()}",
            )
        )
        return [], problems
    rules: list[Rule] = []
    for item in section.items:
        rule = _parse_rule(item, path, stories, problems)
        if rule is not None:
            rules.append(rule)
    return rules, problems


def _parse_rule(
    item: YNode, path: str, stories: bool, problems: list[Problem]
) -> Rule | None:
    kind = "story" if stories else "rule"
    allowed = _STORY_KEYS if stories else _RULE_KEYS

    def error(line: int, message: str) -> None:
        problems.append(Problem(Location(path, line), message))

    name_node = item.get(kind) if item.is_map else None
    if name_node is None or name_node.kind != "scalar" or not name_node.text().strip():
        error(item.line, f"each item of '{kind}s' must start with '- {kind}: <name>'")
        return None
    name = name_node.text().strip()
    for key in item.key_names():
        if key not in allowed:
            error(
                item.key_line(key),
                f"unknown key '{key}' in {kind} '{name}' (allowed: {', '.join(sorted(allowed))})",
            )
    steps_node = item.get("steps")
    if steps_node is None or not steps_node.is_seq or not steps_node.items:
        error(item.line, f"{kind} '{name}' needs a non-empty list of 'steps'")
        return None
    steps = tuple(
        s
        for s in (
            _parse_step(n, path, f"{kind} '{name}'", problems) for n in steps_node.items
        )
        if s
    )
    condition_node = item.get("condition")
    condition: tuple[RuleStep, ...] = ()
    if condition_node is not None and condition_node.is_seq:
        condition = tuple(
            s
            for s in (
                _parse_step(n, path, f"condition of rule '{name}'", problems)
                for n in condition_node.items
            )
            if s
        )
    elif condition_node is not None and not condition_node.is_null:
        error(
            condition_node.line, f"condition of rule '{name}' must be a list of steps"
        )
    return Rule(
        name,
        steps,
        condition=condition,
        conversation_start=_flag(item, "conversation_start", False),
        wait_for_user_input=_flag(item, "wait_for_user_input", True),
        is_story=stories,
        location=Location(path, item.line),
    )


def _flag(item: YNode, key: str, default: bool) -> bool:
    node = item.get(key)
    return (
        node.scalar if node is not None and isinstance(node.scalar, bool) else default
    )


def _parse_step(
    node: YNode, path: str, where: str, problems: list[Problem]
) -> RuleStep | None:
    location = Location(path, node.line)
    kinds = [key for key in _STEP_KEYS if node.is_map and node.get(key) is not None]
    if not kinds:
        found = ", ".join(node.key_names()) if node.is_map else node.describe()
        problems.append(
            Problem(
                location,
                f"step of {where} needs one of {', '.join(_STEP_KEYS)} (found {found})",
            )
        )
        return None
    if len(kinds) > 1 and set(kinds) != {"intent", "user"}:
        problems.append(
            Problem(
                location,
                f"step of {where} has several of {', '.join(kinds)}; split it into steps",
            )
        )
        return None
    if "or" in kinds:
        alternatives_node = node.get("or")
        assert alternatives_node is not None
        if not alternatives_node.is_seq:
            problems.append(
                Problem(location, f"'or' in {where} must be a list of steps")
            )
            return None
        alternatives = tuple(
            s
            for s in (
                _parse_step(n, path, where, problems) for n in alternatives_node.items
            )
            if s
        )
        return RuleStep(alternatives=alternatives, location=location)
    if "slot_was_set" in kinds:
        return RuleStep(
            slot_was_set=_pairs(
                node.get("slot_was_set"), "slot_was_set", where, location, problems
            ),
            location=location,
        )
    values = {key: _name(node.get(key)) for key in kinds}
    if "active_loop" in values and values["active_loop"] is None:
        values["active_loop"] = "null"
    for key, value in values.items():
        if value is None and key != "active_loop":
            problems.append(
                Problem(
                    location, f"'{key}' in a step of {where} must be a non-empty string"
                )
            )
            return None
    return RuleStep(
        intent=values.get("intent"),
        action=values.get("action"),
        active_loop=values.get("active_loop"),
        user_text=values.get("user"),
        bot_text=values.get("bot"),
        checkpoint=values.get("checkpoint"),
        entities=_pairs(node.get("entities"), "entities", where, location, problems),
        location=location,
    )


def _name(node: YNode | None) -> str | None:
    if node is None or node.kind != "scalar" or node.is_null:
        return None
    return node.text().strip() or None


def _pairs(
    node: YNode | None,
    key: str,
    where: str,
    location: Location,
    problems: list[Problem],
) -> tuple[tuple[str, Any], ...]:
    """`- name: value` / `- name` lists (slot_was_set, entities) as (name, value) pairs."""
    if node is None or node.is_null:
        return ()
    items = node.items if node.is_seq else (node,)
    out: list[tuple[str, Any]] = []
    for item in items:
        if item.is_map and item.get("entity") is not None and key == "entities":
            entity, value = item.get("entity"), item.get("value")
            out.append(
                (entity.text() if entity else "", value.to_python() if value else None)
            )
        elif item.is_map:
            out.extend((str(k.scalar), v.to_python()) for k, v in item.pairs)
        elif item.kind == "scalar" and item.text():
            out.append((item.text(), None))  # bare name: "set to any value"
        else:
            problems.append(
                Problem(
                    location,
                    f"'{key}' in a step of {where} must list names or 'name: value' pairs",
                )
            )
    return tuple(out)
