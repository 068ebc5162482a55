"""The IVR state machine as a table: (mode, input kind) -> step and allowed next modes."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


class Mode(enum.Enum):
    """What the IVR is waiting for."""

    IDLE = "idle"  # not in the IVR (never entered, or left it)
    MENU = "menu"  # waiting for a menu choice
    COLLECT = "collect"  # collecting the digits of a number


class InputKind(enum.Enum):
    """What happened: the caller's key press kinds, a timeout, or entering the IVR."""

    ENTER = "enter"
    DIGIT = "digit"
    STAR = "star"
    HASH = "hash"
    TIMEOUT = "timeout"


class Step(enum.Enum):
    """The engine handler that carries out a transition."""

    ENTER_MENU = "enter_menu"
    CHOOSE = "choose"
    REPEAT = "repeat"
    BACK = "back"
    NO_INPUT = "no_input"
    ADD_DIGIT = "add_digit"
    RESTART_COLLECT = "restart_collect"
    FINISH_COLLECT = "finish_collect"
    COLLECT_TIMEOUT = "collect_timeout"


class IllegalIvrTransition(Exception):
    """Raised when an input is not allowed in the current mode."""

    def __init__(self, mode: Mode, kind: InputKind, detail: str = "") -> None:
        self.mode = mode
        self.kind = kind
        super().__init__(f"{kind.value} is not allowed in mode {mode.value}{detail}")


@dataclass(frozen=True)
class Transition:
    """One row of the table: the step to run and the modes it may end in."""

    step: Step
    next_modes: frozenset[Mode]


def _row(step: Step, *modes: Mode) -> Transition:
    return Transition(step, frozenset(modes))


_ANY = (Mode.IDLE, Mode.MENU, Mode.COLLECT)

TRANSITIONS: Mapping[tuple[Mode, InputKind], Transition] = MappingProxyType(
    {
        (Mode.IDLE, InputKind.ENTER): _row(Step.ENTER_MENU, Mode.MENU),
        (Mode.MENU, InputKind.ENTER): _row(Step.ENTER_MENU, Mode.MENU),
        (Mode.COLLECT, InputKind.ENTER): _row(Step.ENTER_MENU, Mode.MENU),
        (Mode.MENU, InputKind.DIGIT): _row(Step.CHOOSE, *_ANY),
        (Mode.MENU, InputKind.STAR): _row(Step.REPEAT, Mode.MENU),
        (Mode.MENU, InputKind.HASH): _row(Step.BACK, Mode.MENU),
        (Mode.MENU, InputKind.TIMEOUT): _row(Step.NO_INPUT, Mode.MENU, Mode.IDLE),
        (Mode.COLLECT, InputKind.DIGIT): _row(Step.ADD_DIGIT, *_ANY),
        (Mode.COLLECT, InputKind.STAR): _row(Step.RESTART_COLLECT, Mode.COLLECT),
        (Mode.COLLECT, InputKind.HASH): _row(Step.FINISH_COLLECT, *_ANY),
        (Mode.COLLECT, InputKind.TIMEOUT): _row(Step.COLLECT_TIMEOUT, *_ANY),
    }
)


def transition_for(mode: Mode, kind: InputKind) -> Transition:
    """The table row for `(mode, kind)`; raises IllegalIvrTransition if there is none."""
    try:
        return TRANSITIONS[(mode, kind)]
    except KeyError:
        raise IllegalIvrTransition(mode, kind) from None


def check_next_mode(transition: Transition, mode: Mode, kind: InputKind, after: Mode) -> None:
    """Raise IllegalIvrTransition if a step ended in a mode its row does not allow."""
    if after not in transition.next_modes:
        raise IllegalIvrTransition(mode, kind, f" (step {transition.step.value} ended in {after.value})")


def key_kind(key: str) -> InputKind:
    """The input kind of one DTMF key; raises ValueError for anything but 0-9 * #."""
    if key == "*":
        return InputKind.STAR
    if key == "#":
        return InputKind.HASH
    if len(key) == 1 and key in "0123456789":
        return InputKind.DIGIT
    raise ValueError(f"not a DTMF key: {key!r}")


def mermaid() -> str:
    """A Mermaid state diagram generated from the table (for the docs)."""
    lines = ["stateDiagram-v2"]
    for (mode, kind), row in TRANSITIONS.items():
        for after in sorted(row.next_modes, key=lambda m: m.value):
            lines.append(f"    {mode.value} --> {after.value}: {kind.value} / {row.step.value}")
    return "\n".join(lines)
