"""Sans-I/O DTMF menu engine: keys and timeouts in, prompts and outcomes out.

The engine holds no per-call data: every call passes its own `IvrState`, which
the engine mutates in place. It never reads a clock; the caller reports a
timeout (no key within `IvrResult.timeout_seconds`) by calling `timeout()`.
"""

from __future__ import annotations

from collections.abc import Callable

from bot.ivr.config import (
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
from bot.ivr.outcomes import (
    BackToSpeech,
    GoIntent,
    Handoff,
    HangUp,
    IvrResult,
    SayResponse,
)
from bot.ivr.state import IvrState
from bot.ivr.transitions import (
    InputKind,
    Mode,
    Step,
    check_next_mode,
    key_kind,
    transition_for,
)

AGENT_KEY = "0"


class StateMismatch(ValueError):
    """Raised when a saved state points at a collect the configuration does not have."""


def _menu_of(entry: str) -> str:
    return entry.split(":", 1)[-1]


def _is_collect(entry: str) -> bool:
    return _menu_of(entry).startswith("collect ")


class IvrEngine:
    """Runs the menus of one `IvrConfig` for any number of calls."""

    def __init__(self, config: IvrConfig) -> None:
        self.config = config
        self._steps: dict[Step, Callable[[IvrState, str], IvrResult]] = {
            Step.ENTER_MENU: self._enter_menu,
            Step.CHOOSE: self._choose,
            Step.REPEAT: self._repeat,
            Step.BACK: self._back,
            Step.NO_INPUT: self._no_input,
            Step.ADD_DIGIT: self._add_digit,
            Step.RESTART_COLLECT: self._restart_collect,
            Step.FINISH_COLLECT: self._finish_collect,
            Step.COLLECT_TIMEOUT: self._collect_timeout,
        }

    # Public API

    def enter(self, state: IvrState, menu: str | None = None, reason: str = "") -> IvrResult:
        """Start (or restart) the IVR at `menu` (default: the start menu); clears collected slots."""
        name = menu or self.config.start
        self.config.menu(name)  # raise UnknownMenu before touching the state
        state.reason = reason
        return self._run(state, InputKind.ENTER, name)

    def press(self, state: IvrState, keys: str) -> IvrResult:
        """Process one or more keys in order; keys after the first outcome are discarded."""
        kinds = [key_kind(key) for key in keys]
        if not kinds:
            raise ValueError("no key pressed")
        result = IvrResult()
        for key, kind in zip(keys, kinds, strict=True):
            step = self._run(state, kind, key)
            result = result.then(step)
            if step.outcome is not None:
                break
        return result

    def timeout(self, state: IvrState) -> IvrResult:
        """The caller pressed nothing within the timeout."""
        return self._run(state, InputKind.TIMEOUT, "")

    # Dispatch through the transition table

    def _run(self, state: IvrState, kind: InputKind, arg: str) -> IvrResult:
        before = state.mode
        transition = transition_for(before, kind)
        result = self._steps[transition.step](state, arg)
        check_next_mode(transition, before, kind, state.mode)
        return result

    # Menu steps

    def _enter_menu(self, state: IvrState, name: str) -> IvrResult:
        state.slots.clear()
        state.path = list(self.config.route(name))
        return self._open_menu(state, name)

    def _choose(self, state: IvrState, key: str) -> IvrResult:
        menu = self._menu(state)
        action = menu.options.get(key)
        if action is not None:
            return self._perform(state, key, action, f"caller pressed {key} in menu {menu.name}")
        if key == AGENT_KEY:
            lead = (menu.agent_prompt,) if menu.agent_prompt else ()
            reason = f"caller pressed 0 for an agent in menu {menu.name}"
            return self._leave(state, lead, Handoff(menu.agent_skill, reason))
        return self._fail(state, menu.invalid_prompt, menu.prompt)

    def _repeat(self, state: IvrState, _key: str) -> IvrResult:
        menu = self._menu(state)
        return IvrResult((menu.prompt,), None, menu.timeout)

    def _back(self, state: IvrState, _key: str) -> IvrResult:
        if len(state.path) < 2:
            return self._repeat(state, _key)
        state.path.pop()
        return self._open_menu(state, _menu_of(state.path[-1]))

    def _no_input(self, state: IvrState, _arg: str) -> IvrResult:
        menu = self._menu(state)
        return self._fail(state, menu.no_input_prompt, menu.prompt)

    # Collect steps

    def _add_digit(self, state: IvrState, digit: str) -> IvrResult:
        state.digits += digit
        if len(state.digits) >= self._collect(state).max_digits:
            return self._finish_collect(state, "")
        return IvrResult((), None, self._menu(state).timeout)

    def _restart_collect(self, state: IvrState, _key: str) -> IvrResult:
        state.digits = ""
        return IvrResult((self._collect(state).prompt,), None, self._menu(state).timeout)

    def _finish_collect(self, state: IvrState, _key: str) -> IvrResult:
        collect = self._collect(state)
        if not state.digits:  # a bare "#" cancels the entry and goes back to the menu
            self._drop_collect(state)
            return self._open_menu(state, state.menu)
        if len(state.digits) < collect.min_digits:
            state.digits = ""
            return self._fail(
                state, collect.invalid_prompt or self._menu(state).invalid_prompt, collect.prompt
            )
        state.slots[collect.slot] = collect.prefix + state.digits
        if isinstance(collect.then, CollectAction):
            state.collect_depth += 1
            return self._start_collect(state, state.collect_key, collect.then, ())
        key = state.collect_key
        self._drop_collect(state)
        return self._perform(state, key, collect.then, f"caller entered {collect.slot} in menu {state.menu}")

    def _collect_timeout(self, state: IvrState, _arg: str) -> IvrResult:
        if state.digits:  # digits then silence: take what was typed
            return self._finish_collect(state, "")
        return self._fail(state, self._menu(state).no_input_prompt, self._collect(state).prompt)

    # Helpers

    def _perform(self, state: IvrState, key: str, action: Action, reason: str) -> IvrResult:
        lead = (action.prompt,) if action.prompt and not isinstance(action, CollectAction) else ()
        if isinstance(action, MenuAction):
            state.path.append(f"{key}:{action.menu}")
            return self._open_menu(state, action.menu, lead)
        if isinstance(action, CollectAction):
            state.collect_key, state.collect_depth = key, 0
            return self._start_collect(state, key, action, lead)
        if isinstance(action, ResponseAction):
            state.retries = 0
            menu = self._menu(state)
            return IvrResult((*lead, menu.prompt), SayResponse(action.response), menu.timeout)
        if isinstance(action, IntentAction):
            return self._leave(state, lead, GoIntent(action.intent, dict(state.slots)))
        if isinstance(action, HandoffAction):
            return self._leave(state, lead, Handoff(action.skill, reason))
        if isinstance(action, HangUpAction):
            return self._leave(state, lead, HangUp())
        if isinstance(action, SpeechAction):
            return self._leave(state, lead, BackToSpeech())
        raise TypeError(f"unknown IVR action {action!r}")

    def _fail(self, state: IvrState, sorry: str, reprompt: str) -> IvrResult:
        """Count a failed attempt: apologise and re-prompt, or give up after max_retries."""
        menu = self._menu(state)
        state.retries += 1
        if state.retries < menu.max_retries:
            return IvrResult((sorry, reprompt), None, menu.timeout)
        action = menu.on_max_retries
        if isinstance(action, MenuAction):
            state.path = list(self.config.route(action.menu))
            return self._open_menu(state, action.menu, (sorry, *((action.prompt,) if action.prompt else ())))
        reason = f"no valid input after {state.retries} tries in menu {menu.name}"
        result = self._perform(state, "", action, reason)
        return IvrResult((sorry, *result.prompts), result.outcome, result.timeout_seconds)

    def _open_menu(self, state: IvrState, name: str, lead: tuple[str, ...] = ()) -> IvrResult:
        menu = self.config.menu(name)
        state.mode, state.menu, state.retries, state.digits = Mode.MENU, name, 0, ""
        state.collect_key, state.collect_depth = "", 0
        return IvrResult((*lead, menu.prompt), None, menu.timeout)

    def _start_collect(
        self, state: IvrState, key: str, action: CollectAction, lead: tuple[str, ...]
    ) -> IvrResult:
        state.mode, state.digits, state.retries = Mode.COLLECT, "", 0
        state.path.append(f"{key}:collect {action.slot}")
        return IvrResult((*lead, action.prompt), None, self._menu(state).timeout)

    def _drop_collect(self, state: IvrState) -> None:
        while state.path and _is_collect(state.path[-1]):
            state.path.pop()
        state.mode, state.digits, state.collect_key, state.collect_depth = Mode.MENU, "", "", 0

    def _leave(
        self, state: IvrState, prompts: tuple[str, ...], outcome: GoIntent | Handoff | HangUp | BackToSpeech
    ) -> IvrResult:
        self._drop_collect(state)
        state.mode, state.retries = Mode.IDLE, 0
        return IvrResult(prompts, outcome, None)

    def _menu(self, state: IvrState) -> Menu:
        return self.config.menu(state.menu)

    def _collect(self, state: IvrState) -> CollectAction:
        action: Action | None = self._menu(state).options.get(state.collect_key)
        for _ in range(state.collect_depth):
            action = action.then if isinstance(action, CollectAction) else None
        if not isinstance(action, CollectAction):
            raise StateMismatch(f"menu {state.menu!r} has no collect at key {state.collect_key!r}")
        return action
