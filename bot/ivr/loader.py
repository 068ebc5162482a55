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

from collections.abc import Collection
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node

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
from bot.ivr.yaml_nodes import NodeReader
from bot.training_data.model import DataError, Location, Problem

ACTION_KINDS = ("menu", "intent", "response", "handoff", "hangup", "speech", "collect")
SETTING_KEYS = (
    "timeout",
    "max_retries",
    "invalid_prompt",
    "no_input_prompt",
    "agent_prompt",
    "on_max_retries",
    "agent_skill",
)
COLLECT_KEYS = ("slot", "prompt", "min_digits", "max_digits", "prefix", "invalid_prompt", "then")


def load_ivr(path: str | Path, *, skills: Collection[str] = DEFAULT_SKILLS) -> IvrConfig:
    """Read and validate an IVR file; raises DataError listing every problem."""
    return load_ivr_text(Path(path).read_text(encoding="utf-8"), str(path), skills=skills)


def load_ivr_text(
    text: str, path: str = "<memory>", *, skills: Collection[str] = DEFAULT_SKILLS
) -> IvrConfig:
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
    problems.sort(key=lambda p: p.location.line)
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


class _Reader(NodeReader):
    """Turns composed YAML nodes into an `IvrConfig`, collecting problems on the way."""

    def __init__(self, path: str, skills: frozenset[str]) -> None:
        super().__init__(path)
        self.skills = skills

    def read(self, root: Node | None) -> IvrConfig | None:
        if root is None:
            self.error(None, "the file is empty")
            return None
        top = self.mapping(root, "the file", ("version", "ivr"))
        version = top.get("version")
        if version is None:
            self.error(root, "missing 'version' (use version: \"1\")")
        elif str(self.value(version)) != "1":
            self.error(version, f'unsupported version {self.value(version)!r} (expected "1")')
        if "ivr" not in top:
            self.error(root, "missing 'ivr' section")
            return None
        ivr = self.mapping(top["ivr"], "'ivr'", ("start", "defaults", "menus"))
        start = self.name(ivr["start"], "start menu") if "start" in ivr else None
        if start is None and "start" not in ivr:
            self.error(top["ivr"], "missing 'start' (the entry menu)")
        defaults = _Settings()
        if "defaults" in ivr:
            defaults = self._settings(self.mapping(ivr["defaults"], "defaults", SETTING_KEYS), defaults)
        if "menus" not in ivr:
            self.error(top["ivr"], "missing 'menus'")
            return None
        menus: dict[str, Menu] = {}
        for key, node in self.items(ivr["menus"], "'menus'"):
            name = self.name(key, "menu name")
            menu = self._menu(name, node, defaults, self.at(key)) if name else None
            if name and menu:
                menus[name] = menu
        where = self.at(ivr["start"] if "start" in ivr else top["ivr"])
        return IvrConfig(start=start or "", menus=menus, path=self.path, start_location=where)

    def _menu(self, name: str, node: Node, defaults: _Settings, where: Location) -> Menu | None:
        fields = self.mapping(node, f"menu {name!r}", ("prompt", "options", *SETTING_KEYS))
        settings = self._settings(fields, defaults)
        prompt = self.text(fields["prompt"], "prompt") if "prompt" in fields else None
        if "prompt" not in fields:
            self.error(node, f"menu {name!r} has no prompt")
        if "options" not in fields:
            self.error(node, f"menu {name!r} has no options")
            return None
        options: dict[str, Action] = {}
        for key, value in self.items(fields["options"], f"options of menu {name!r}"):
            digit = str(key.value)
            if len(digit) != 1 or digit not in "0123456789":
                self.error(
                    key,
                    f"option key {digit!r} in menu {name!r} is not a single digit 0-9 (* and # are reserved)",
                )
                continue
            action = self._action(value, "option")
            if action is not None:
                options[digit] = action
        if isinstance(fields["options"], MappingNode) and not fields["options"].value:
            self.error(fields["options"], f"menu {name!r} has no options")
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
            location=where,
        )

    def _settings(self, fields: dict[str, Node], base: _Settings) -> _Settings:
        values: dict[str, Any] = {}
        for key, value in fields.items():
            if key not in SETTING_KEYS:
                continue
            if key == "timeout":
                values[key] = self.number(value, key, minimum=0.5)
            elif key == "max_retries":
                number = self.number(value, key, minimum=1, maximum=20, integer=True)
                values[key] = int(number) if number is not None else None
            elif key == "on_max_retries":
                values[key] = self._action(value, "on_max_retries")
            elif key == "agent_skill":
                values[key] = self._skill(value)
            else:
                values[key] = self.text(value, key)
        return replace(base, **{k: v for k, v in values.items() if v is not None})

    def _action(self, node: Node, role: str) -> Action | None:
        fields = self.mapping(node, role, (*ACTION_KINDS, "prompt"))
        kinds = [k for k in ACTION_KINDS if k in fields]
        if len(kinds) != 1:
            found = ", ".join(kinds) or "none"
            self.error(node, f"{role} needs exactly one of {', '.join(ACTION_KINDS)} (found {found})")
            return None
        kind, value = kinds[0], fields[kinds[0]]
        if role == "on_max_retries" and kind in ("response", "collect"):
            self.error(
                node, f"on_max_retries cannot use '{kind}' (use menu, intent, handoff, hangup or speech)"
            )
            return None
        prompt = self.text(fields["prompt"], "prompt") if "prompt" in fields else ""
        where = self.at(node)
        if prompt is None:
            return None
        if kind == "collect":
            if "prompt" in fields:
                self.error(fields["prompt"], "put a collect's prompt inside 'collect'")
            return self._collect(value)
        if kind in ("hangup", "speech"):
            if self.value(value) is not True:
                self.error(value, f"'{kind}' must be true")
                return None
            return HangUpAction(prompt, where) if kind == "hangup" else SpeechAction(prompt, where)
        if kind == "handoff":
            skill = self._skill(value)
            return HandoffAction(skill, prompt, where) if skill else None
        name = self.name(value, kind)
        if name is None:
            return None
        if kind == "menu":
            return MenuAction(name, prompt, where)
        if kind == "intent":
            return IntentAction(name, prompt, where)
        return ResponseAction(name, prompt, where)

    def _collect(self, node: Node) -> CollectAction | None:
        fields = self.mapping(node, "collect", COLLECT_KEYS)
        for required in ("slot", "prompt", "then"):
            if required not in fields:
                self.error(node, f"collect without {required}")
        if not all(k in fields for k in ("slot", "prompt", "then")):
            return None
        slot = self.name(fields["slot"], "slot")
        prompt = self.text(fields["prompt"], "prompt")
        then = self._action(fields["then"], "then")
        low = (
            self.number(fields["min_digits"], "min_digits", minimum=1, integer=True)
            if "min_digits" in fields
            else 1
        )
        high = (
            self.number(fields["max_digits"], "max_digits", minimum=1, maximum=32, integer=True)
            if "max_digits" in fields
            else 20
        )
        prefix = self.text(fields["prefix"], "prefix", allow_empty=True) if "prefix" in fields else ""
        invalid = self.text(fields["invalid_prompt"], "invalid_prompt") if "invalid_prompt" in fields else ""
        if low is not None and high is not None and low > high:
            self.error(node, f"min_digits ({low}) is larger than max_digits ({high})")
            return None
        if slot is None or prompt is None or then is None or low is None or high is None:
            return None
        if prefix is None or invalid is None:
            return None
        return CollectAction(slot, prompt, then, int(low), int(high), prefix, invalid, self.at(node))

    def _skill(self, node: Node) -> str | None:
        skill = self.text(node, "handoff skill")
        if skill is not None and skill not in self.skills:
            self.error(node, f"unknown handoff skill {skill!r} (known: {', '.join(sorted(self.skills))})")
            return None
        return skill
