"""Conversation tests: YAML files of caller turns and what the bot must do in reply."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.dialogue.engine import BotTurn, DialogueEngine

Clock = Callable[[], float]
EngineFactory = Callable[[Clock], DialogueEngine]
START_TIME = 1_750_000_000.0  # a fixed, arbitrary moment so tests never depend on today
_STEP_KEYS = {"user", "dtmf", "no_input", "speech_down", "start", "wait", "bot", "bot_not",
              "slots", "handoff", "hangup", "ivr", "action", "actions", "intent", "form", "mode",
              "verified", "language"}
_INPUTS = ("user", "dtmf", "no_input", "speech_down", "start")


class ConversationFormatError(ValueError):
    """A conversation file that cannot be run; the message names file and turn."""


@dataclass(frozen=True)
class Step:
    """One caller event and the expectations about the bot's answer."""

    kind: str  # user | dtmf | no_input | speech_down | start | check
    value: str = ""
    wait: float = 0.0  # seconds that pass before this event (session expiry)
    expect: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Conversation:
    name: str
    caller: str | None
    channel: str
    steps: tuple[Step, ...]
    path: str = "<memory>"


@dataclass(frozen=True)
class ConversationResult:
    """Pass or fail, with a readable transcript and what differed."""

    name: str
    path: str
    passed: bool
    failures: tuple[str, ...]
    transcript: tuple[str, ...]

    def report(self) -> str:
        head = f"{'PASS' if self.passed else 'FAIL'} {self.path}: {self.name}"
        if self.passed:
            return head
        return "\n".join([head, *("  " + f for f in self.failures), "  transcript:",
                          *("    " + line for line in self.transcript)])


def parse_conversation(data: Any, path: str = "<memory>") -> Conversation:
    """A typed conversation from the YAML's dict; errors name the file and turn."""
    if not isinstance(data, Mapping) or not isinstance(data.get("turns"), list):
        raise ConversationFormatError(f"{path}: expected a mapping with a `turns` list")
    steps: list[Step] = []
    for index, raw in enumerate(data["turns"], start=1):
        if not isinstance(raw, Mapping):
            raise ConversationFormatError(f"{path}: turn {index} is not a mapping")
        unknown = set(raw) - _STEP_KEYS
        if unknown:
            raise ConversationFormatError(f"{path}: turn {index}: unknown keys {sorted(unknown)}")
        inputs = [k for k in _INPUTS if k in raw]
        if len(inputs) > 1:
            raise ConversationFormatError(f"{path}: turn {index}: more than one input {inputs}")
        kind = inputs[0] if inputs else "check"
        value = "" if kind in ("no_input", "speech_down", "start", "check") else raw[kind]
        expect = {k: v for k, v in raw.items() if k not in (*_INPUTS, "wait")}
        steps.append(Step(kind, "" if value is None else str(value),
                          float(raw.get("wait") or 0), expect))
    caller = data.get("caller")
    return Conversation(name=str(data.get("name") or Path(path).stem),
                        caller=str(caller) if caller is not None else None,
                        channel=str(data.get("channel") or "voice"), steps=tuple(steps),
                        path=path)


def load_conversation(path: str | Path) -> Conversation:
    text = Path(path).read_text(encoding="utf-8")
    return parse_conversation(yaml.safe_load(text), str(path))


def run_conversation(conversation: Conversation, engine_factory: EngineFactory) -> ConversationResult:
    """Play the caller's side against a fresh engine and compare every answer."""
    clock = [START_TIME]
    engine = engine_factory(lambda: clock[0])
    sender = f"test-{Path(conversation.path).stem}"
    failures: list[str] = []
    lines: list[str] = []
    last: BotTurn | None = None
    for number, step in enumerate(conversation.steps, start=1):
        clock[0] += step.wait or 1.0
        if step.kind != "check":
            last = _play(engine, conversation, sender, step)
            lines.append(f"{number}. {step.kind}: {step.value}".rstrip(": "))
            lines.extend(f"   bot: {m}" for m in last.messages)
            if last.handoff:
                lines.append(f"   [handoff {last.handoff.skill} / {last.handoff.reason}]")
        if last is None:
            failures.append(f"turn {number}: nothing to check before the first input")
            continue
        failures.extend(f"turn {number}: {f}" for f in check_turn(step.expect, last, engine,
                                                                  sender))
    return ConversationResult(conversation.name, conversation.path, not failures,
                              tuple(failures), tuple(lines))


def run_conversation_file(path: str | Path, engine_factory: EngineFactory) -> ConversationResult:
    try:
        conversation = load_conversation(path)
    except (ConversationFormatError, yaml.YAMLError, OSError) as exc:
        return ConversationResult(Path(path).stem, str(path), False, (str(exc),), ())
    return run_conversation(conversation, engine_factory)


def run_conversation_dir(folder: str | Path, engine_factory: EngineFactory
                         ) -> list[ConversationResult]:
    return [run_conversation_file(p, engine_factory) for p in sorted(Path(folder).glob("*.yml"))]


def _play(engine: DialogueEngine, conversation: Conversation, sender: str, step: Step) -> BotTurn:
    caller, channel = conversation.caller, conversation.channel
    if step.kind == "start":
        return engine.start(sender, caller, channel)
    if step.kind == "dtmf":
        return engine.handle_dtmf(sender, step.value, caller, channel)
    if step.kind == "no_input":
        return engine.handle_no_input(sender)
    if step.kind == "speech_down":
        return engine.speech_unavailable(sender, caller, channel)
    return engine.handle_text(sender, step.value, caller, channel)


def check_turn(expect: Mapping[str, Any], turn: BotTurn, engine: DialogueEngine,
               sender: str) -> list[str]:
    """Every way the bot's answer differs from the expectations."""
    failures: list[str] = []
    said = turn.text.lower()
    for piece in _as_list(expect.get("bot")):
        if str(piece).lower() not in said:
            failures.append(f"bot should say {piece!r}; it said {turn.text!r}")
    for piece in _as_list(expect.get("bot_not")):
        if str(piece).lower() in said:
            failures.append(f"bot should not say {piece!r}; it said {turn.text!r}")
    for name, value in dict(expect.get("slots") or {}).items():
        actual = turn.debug.slots.get(name)
        differs = actual is not None if value is None else str(actual) != str(value)
        if differs:
            failures.append(f"slot {name} should be {value!r}; it is {actual!r}")
    failures.extend(_check_handoff(expect, turn))
    if "hangup" in expect and bool(expect["hangup"]) != turn.hangup:
        failures.append(f"hangup should be {expect['hangup']}; it is {turn.hangup}")
    if "ivr" in expect and bool(expect["ivr"]) != turn.ivr_active:
        failures.append(f"IVR active should be {expect['ivr']}; it is {turn.ivr_active}")
    for action in [*_as_list(expect.get("action")), *_as_list(expect.get("actions"))]:
        if action not in turn.actions:
            failures.append(f"action {action} should run; ran {list(turn.actions)}")
    for key, actual in (("intent", turn.debug.intent), ("form", turn.debug.active_form),
                        ("mode", turn.debug.mode), ("language", turn.language)):
        if key in expect and expect[key] != actual:
            failures.append(f"{key} should be {expect[key]!r}; it is {actual!r}")
    state = engine.state_of(sender)
    if state is None or type(state).from_json(state.to_json()) != state:
        failures.append("saved state does not round-trip through JSON")
    if "verified" in expect:
        methods = sorted(set((state.verified if state is not None else {}).values()))
        wanted = [] if expect["verified"] in (False, None) else [str(expect["verified"])]
        if methods != wanted:
            failures.append(f"caller verified by {wanted or 'nothing'}; it is {methods or 'nothing'}")
    return failures


def _check_handoff(expect: Mapping[str, Any], turn: BotTurn) -> list[str]:
    if "handoff" not in expect:
        return []
    wanted = expect["handoff"]
    if wanted in (False, None):
        return [f"no handoff expected; got {turn.handoff.skill}"] if turn.handoff else []
    if turn.handoff is None:
        return [f"handoff expected ({wanted}); there was none"]
    actual = turn.handoff.to_dict()
    details = wanted if isinstance(wanted, Mapping) else {}
    return [f"handoff {key} should be {value!r}; it is {actual.get(key)!r}"
            for key, value in details.items() if actual.get(key) != value]


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]
