"""Load `nlu_data/ivr.yml`: path -> text -> YAML nodes -> `IvrConfig`, errors as `file:line`.

The file format (our own, not Rasa's)::

    version: "1"
    ivr:
      start: main                      # the entry menu
      defaults:                        # apply to every menu unless it overrides them
        timeout: 6                     # seconds to wait for a key
        max_retries: 3                 # failed attempts (invalid key, silence, bad number)
        invalid_prompt: "Sorry, that is not a valid choice."
        no_input_prompt: "Sorry, I didn't hear a key press."
        agent_prompt: "Connecting you to an agent."   # said when 0 asks for an agent
        agent_skill: general           # where 0 hands the call to
        on_max_retries: {handoff: general}
      menus:
        main:
          prompt: "For orders, press 1. ..."
          options:                     # keys are single digits "0"-"9"
            "1": {menu: orders}                       # go to a sub-menu
            "2": {intent: delivery_time}              # leave: the bot handles the intent
            "3": {response: utter_opening_hours}      # say a response, stay in the menu
            "4": {handoff: billing, prompt: "..."}    # leave: queue for humans
            "8": {hangup: true, prompt: "Goodbye."}   # leave: end the call
            "9": {speech: true}                       # leave: talk to the bot again
            "5": {collect: {slot: order_number, prompt: "...", min_digits: 5, max_digits: 8,
                            prefix: "", invalid_prompt: "...", then: {intent: check_order_status}}}

Every option may carry a `prompt` said before it takes effect (a collect's
`prompt` is inside `collect`). A menu may override any default. Keys `*`
(repeat) and `#` (back) are global; `0` asks for an agent unless defined.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode

from bot.ivr.config import (
    DEFAULT_SKILLS,
    Action,
    CollectAction,
    HandoffAction,
    HangUpAction,
    IntentAction,
    IvrConfig,
    Menu,
    MenuAction,
    ResponseAction,
    SpeechAction,
)
from bot.ivr.validate import cross_check
from bot.training_data.model import DataError, Location, Problem

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ACTION_KINDS = ("menu", "intent", "response", "handoff", "hangup", "speech", "collect")
SETTING_KEYS = ("timeout", "max_retries", "invalid_prompt", "no_input_prompt", "agent_prompt", "on_max_retries", "agent_skill")
COLLECT_KEYS = ("slot", "prompt", "min_digits", "max_digits", "prefix", "invalid_prompt", "then")


def load_ivr(path: str | Path, *, skills: Collection[str] = DEFAULT_SKILLS) -> IvrConfig:
    """Read and validate an IVR file; raises DataError listing every problem."""
    return load_ivr_text(Path(path).read_text(encoding="utf-8"), str(path), skills=skills)


def load_ivr_text(text: str, path: str = "<memory>", *, skills: Collection[str] = DEFAULT_SKILLS) -> IvrConfig:
    """Parse and validate IVR YAML text; `path` is only used in messages."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 0
        raise DataError([Problem(Location(path, line), f"invalid YAML: {exc.problem}")]) from None
    reader = _Reader(path, frozenset(skills))
    config = reader.read(root)
    problems = reader.problems
    if config is not None:
        problems += cross_check(config)
    errors = [p for p in problems if p.severity == "error"]
    if errors or config is None:
        raise DataError(errors or problems)
    return replace(config, warnings=tuple(problems))


@dataclass(frozen=True)
class _Settings:
    """Menu settings that `defaults` provides and each menu may override."""

    timeout: float = 6.0
    max_retries: int = 3
    invalid_prompt: str = "Sorry, that is not a valid choice."
    no_input_prompt: str = "Sorry, I didn't hear a key press."
    agent_prompt: str = ""
    on_max_retries: Action = HandoffAction("general")  # noqa: RUF009 (frozen, so sharing is safe)
    agent_skill: str = "general"


class _Reader:
    """Turns composed YAML nodes into an `IvrConfig`, collecting problems on the way."""

    def __init__(self, path: str, skills: frozenset[str]) -> None:
        self.path = path
        self.skills = skills
        self.problems: list[Problem] = []
        self._constructor = SafeConstructor()

    def read(self, root: Node | None) -> IvrConfig | None:
        if root is None:
            self._error(None, "the file is empty")
            return None
        top = self._mapping(root, "the file", ("version", "ivr"))
        version = top.get("version")
        if version is None:
            self._error(root, "missing 'version' (use version: \"1\")")
        elif str(self._value(version)) != "1":
            self._error(version, f"unsupported version {self._value(version)!r} (expected \"1\")")
        if "ivr" not in top:
            self._error(root, "missing 'ivr' section")
            return None
        ivr = self._mapping(top["ivr"], "'ivr'", ("start", "defaults", "menus"))
        start = self._name(ivr["start"], "start menu") if "start" in ivr else None
        if start is None and "start" not in ivr:
            self._error(top["ivr"], "missing 'start' (the entry menu)")
        defaults = _Settings()
        if "defaults" in ivr:
            defaults = self._settings(self._mapping(ivr["defaults"], "defaults", SETTING_KEYS), defaults)
        if "menus" not in ivr:
            self._error(top["ivr"], "missing 'menus'")
            return None
        menus: dict[str, Menu] = {}
        for key, node in self._items(ivr["menus"], "'menus'"):
            name = self._name(key, "menu name")
            menu = self._menu(name, node, defaults) if name else None
            if name and menu:
                menus[name] = menu
        where = self._at(ivr["start"] if "start" in ivr else top["ivr"])
        return IvrConfig(start=start or "", menus=menus, path=self.path, start_location=where)

    def _menu(self, name: str, node: Node, defaults: _Settings) -> Menu | None:
        fields = self._mapping(node, f"menu {name!r}", ("prompt", "options", *SETTING_KEYS))
        settings = self._settings(fields, defaults)
        prompt = self._text(fields["prompt"], "prompt") if "prompt" in fields else None
        if "prompt" not in fields:
            self._error(node, f"menu {name!r} has no prompt")
        if "options" not in fields:
            self._error(node, f"menu {name!r} has no options")
            return None
        options: dict[str, Action] = {}
        for key, value in self._items(fields["options"], f"options of menu {name!r}"):
            digit = str(key.value)
            if len(digit) != 1 or digit not in "0123456789":
                self._error(key, f"option key {digit!r} in menu {name!r} is not a single digit 0-9 (* and # are reserved)")
                continue
            action = self._action(value, "option")
            if action is not None:
                options[digit] = action
        if not options and isinstance(fields["options"], MappingNode):
            self._error(fields["options"], f"menu {name!r} has no options")
        return Menu(
            name=name,
            prompt=prompt or "",
            options=options,
            timeout=settings.timeout,
            max_retries=settings.max_retries,
            invalid_prompt=settings.invalid_prompt,
            no_input_prompt=settings.no_input_prompt,
            agent_prompt=settings.agent_prompt,
            on_max_retries=settings.on_max_retries,
            agent_skill=settings.agent_skill,
            location=self._at(node),
        )

    def _settings(self, fields: dict[str, Node], base: _Settings) -> _Settings:
        values: dict[str, Any] = {}
        for key, value in fields.items():
            if key not in SETTING_KEYS:
                continue
            if key == "timeout":
                values[key] = self._number(value, key, minimum=0.5)
            elif key == "max_retries":
                number = self._number(value, key, minimum=1, maximum=20, integer=True)
                values[key] = int(number) if number is not None else None
            elif key == "on_max_retries":
                values[key] = self._action(value, "on_max_retries")
            elif key == "agent_skill":
                values[key] = self._skill(value)
            else:
                values[key] = self._text(value, key)
        return replace(base, **{k: v for k, v in values.items() if v is not None})

    def _action(self, node: Node, role: str) -> Action | None:
        allowed = ACTION_KINDS if role != "on_max_retries" else ("menu", "intent", "handoff", "hangup", "speech")
        fields = self._mapping(node, role, (*allowed, "prompt"))
        kinds = [k for k in allowed if k in fields]
        if len(kinds) != 1:
            found = ", ".join(kinds) or "none"
            self._error(node, f"{role} needs exactly one of {', '.join(allowed)} (found {found})")
            return None
        kind, value = kinds[0], fields[kinds[0]]
        prompt = self._text(fields["prompt"], "prompt") if "prompt" in fields else ""
        where = self._at(node)
        if prompt is None:
            return None
        if kind == "collect":
            if "prompt" in fields:
                self._error(fields["prompt"], "put a collect's prompt inside 'collect'")
            return self._collect(value)
        if kind in ("hangup", "speech"):
            if self._value(value) is not True:
                self._error(value, f"'{kind}' must be true")
                return None
            return HangUpAction(prompt, where) if kind == "hangup" else SpeechAction(prompt, where)
        if kind == "handoff":
            skill = self._skill(value)
            return HandoffAction(skill, prompt, where) if skill else None
        name = self._name(value, kind)
        if name is None:
            return None
        if kind == "menu":
            return MenuAction(name, prompt, where)
        if kind == "intent":
            return IntentAction(name, prompt, where)
        return ResponseAction(name, prompt, where)

    def _collect(self, node: Node) -> CollectAction | None:
        fields = self._mapping(node, "collect", COLLECT_KEYS)
        for required in ("slot", "prompt", "then"):
            if required not in fields:
                self._error(node, f"collect without {required}")
        if not all(k in fields for k in ("slot", "prompt", "then")):
            return None
        slot = self._name(fields["slot"], "slot")
        prompt = self._text(fields["prompt"], "prompt")
        then = self._action(fields["then"], "then")
        low = self._number(fields["min_digits"], "min_digits", minimum=1, integer=True) if "min_digits" in fields else 1
        high = self._number(fields["max_digits"], "max_digits", minimum=1, maximum=32, integer=True) if "max_digits" in fields else 20
        prefix = self._text(fields["prefix"], "prefix", allow_empty=True) if "prefix" in fields else ""
        invalid = self._text(fields["invalid_prompt"], "invalid_prompt") if "invalid_prompt" in fields else ""
        if low is not None and high is not None and low > high:
            self._error(node, f"min_digits ({low}) is larger than max_digits ({high})")
            return None
        if slot is None or prompt is None or then is None or low is None or high is None:
            return None
        if prefix is None or invalid is None:
            return None
        return CollectAction(slot, prompt, then, int(low), int(high), prefix, invalid, self._at(node))

    # Scalars

    def _value(self, node: Node) -> Any:
        return self._constructor.construct_object(node, deep=True)

    def _text(self, node: Node, what: str, allow_empty: bool = False) -> str | None:
        value = self._value(node) if isinstance(node, ScalarNode) else None
        if not isinstance(value, str) or (not value.strip() and not allow_empty):
            self._error(node, f"{what} must be a non-empty string")
            return None
        return value

    def _name(self, node: Node, what: str) -> str | None:
        value = self._text(node, what)
        if value is not None and not NAME.match(value):
            self._error(node, f"{what} {value!r} is not a valid name (letters, digits, _)")
            return None
        return value

    def _skill(self, node: Node) -> str | None:
        skill = self._text(node, "handoff skill")
        if skill is not None and skill not in self.skills:
            self._error(node, f"unknown handoff skill {skill!r} (known: {', '.join(sorted(self.skills))})")
            return None
        return skill

    def _number(self, node: Node, what: str, *, minimum: float, maximum: float = 3600, integer: bool = False) -> float | None:
        value = self._value(node) if isinstance(node, ScalarNode) else None
        number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
        if number is None or (integer and not isinstance(number, int)) or not minimum <= number <= maximum:
            kind = "an integer" if integer else "a number"
            self._error(node, f"{what} must be {kind} between {minimum:g} and {maximum:g}")
            return None
        return number if integer else float(number)

    # Structure

    def _items(self, node: Node, what: str) -> list[tuple[ScalarNode, Node]]:
        if not isinstance(node, MappingNode):
            self._error(node, f"{what} must be a mapping")
            return []
        items: list[tuple[ScalarNode, Node]] = []
        seen: set[str] = set()
        for key, value in node.value:
            if not isinstance(key, ScalarNode):
                self._error(key, f"keys of {what} must be plain strings")
            elif key.value in seen:
                self._error(key, f"duplicate key {key.value!r} in {what}")
            else:
                seen.add(key.value)
                items.append((key, value))
        return items

    def _mapping(self, node: Node, what: str, allowed: tuple[str, ...] | None) -> dict[str, Node]:
        fields: dict[str, Node] = {}
        for key, value in self._items(node, what):
            if allowed is not None and key.value not in allowed:
                self._error(key, f"unknown key {key.value!r} in {what} (allowed: {', '.join(allowed)})")
            else:
                fields[key.value] = value
        return fields

    def _at(self, node: Node | None) -> Location:
        return Location(self.path, node.start_mark.line + 1 if node is not None else 0)

    def _error(self, node: Node | None, message: str) -> None:
        self.problems.append(Problem(self._at(node), message))
