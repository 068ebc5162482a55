"""Connects the DTMF menu engine to the conversation: entering, keys, outcomes."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from bot.dialogue import handoff as handoff_rules
from bot.dialogue.forms import coerce
from bot.dialogue.state import ConversationState
from bot.dialogue.turn import EngineParts, TurnRunner
from bot.dialogue.validation import validator_for
from bot.ivr.engine import IvrEngine
from bot.ivr.outcomes import (
    BackToSpeech,
    GoIntent,
    Handoff,
    HangUp,
    IvrResult,
    SayResponse,
)
from bot.ivr.state import IvrState
from bot.ivr.transitions import Mode

log = logging.getLogger(__name__)


class IvrBridge:
    """Runs the IVR for a conversation; works without an IVR too (then hands over)."""

    def __init__(self, engine: IvrEngine | None, brain: EngineParts,
                 translations: dict[str, IvrEngine] | None = None) -> None:
        self.engine, self.brain = engine, brain
        # The same menus with prompts in another language (`<data>/<language>/ivr.yml`), by language.
        self.translations = translations or {}

    @property
    def available(self) -> bool:
        return self.engine is not None

    def current(self, state: ConversationState) -> IvrState | None:
        return IvrState.from_dict(state.ivr_state) if state.ivr_state is not None else None

    # Ways in

    def escalate(self, runner: TurnRunner, reason: str, *, announce: bool = True,
                 any_channel: bool = False) -> None:
        """Speech is not working: open the keypad menu on voice channels, else hand over."""
        state = runner.state
        voice = any_channel or state.channel in self.brain.settings.voice_channels
        if self.engine is None or not voice:
            runner.request_handoff(handoff_rules.REPEATED_FALLBACK)
            return
        if announce:
            runner.say("utter_ivr_intro")
        runner.deactivate_form()
        self._apply(runner, lambda ivr: self._engine(runner.state).enter(ivr, reason=reason))

    def open_with_keys(self, runner: TurnRunner, keys: str) -> None:
        """A key pressed while talking: open the menu and use the keys in it."""
        if self.engine is None:
            if keys.startswith("0"):
                runner.request_handoff(handoff_rules.CALLER_ASKED)
            else:
                runner.say("utter_ivr_unavailable")
            return
        runner.deactivate_form()
        ivr = IvrState()
        opened = self._engine(runner.state).enter(ivr, reason="caller pressed a key")
        if keys.strip("*#"):  # digits: act on them in the start menu, skip its prompt
            self._apply(runner, lambda s: self._engine(runner.state).press(s, keys), ivr)
        else:
            self._apply(runner, lambda s: opened, ivr)

    # Inside the menu

    def press(self, runner: TurnRunner, keys: str) -> None:
        if not keys:
            self.reprompt(runner)
            return
        self._apply(runner, lambda ivr: self._engine(runner.state).press(ivr, keys))

    def timeout(self, runner: TurnRunner) -> None:
        self._apply(runner, lambda ivr: self._engine(runner.state).timeout(ivr))

    def reprompt(self, runner: TurnRunner) -> None:
        """Say the current menu again (the `*` key)."""
        self._apply(runner, lambda ivr: self._engine(runner.state).press(ivr, "*"))

    def spoken_way_out(self, runner: TurnRunner, parse: dict[str, Any]) -> bool:
        """A clearly understood sentence during the IVR takes the caller back to speech."""
        intent = parse.get("intent") or {}
        confident = float(intent.get("confidence") or 0.0)
        name = intent.get("name")
        if name in (None, "nlu_fallback") or confident < self.brain.settings.speech_back_confidence:
            return False
        runner.state.set_mode("speech")
        ivr = self.current(runner.state)
        if ivr is not None:
            ivr.mode = Mode.IDLE
            runner.state.ivr_state = ivr.to_dict()
        return True

    # Outcomes

    def _apply(self, runner: TurnRunner, step: Any, ivr: IvrState | None = None) -> None:
        state = runner.state
        ivr = ivr if ivr is not None else (self.current(state) or IvrState())
        result: IvrResult = step(ivr)
        self._remember(state, ivr)
        state.set_mode("ivr" if ivr.active else "speech")
        outcome = result.outcome
        if isinstance(outcome, SayResponse):
            runner.say(outcome.name)
        for prompt in result.prompts:
            runner.say_text(prompt)
        runner.out.ivr_timeout = result.timeout_seconds
        if isinstance(outcome, GoIntent):
            self._go_intent(runner, outcome)
        elif isinstance(outcome, Handoff):
            runner.request_handoff(handoff_rules.IVR_REQUEST, skill=outcome.skill,
                                   announce=not result.prompts)
        elif isinstance(outcome, HangUp):
            runner.out.hangup = True
        elif isinstance(outcome, BackToSpeech):
            state.consecutive_fallbacks = state.consecutive_no_input = 0

    def _go_intent(self, runner: TurnRunner, outcome: GoIntent) -> None:
        state = runner.state
        today = datetime.fromtimestamp(runner.now, tz=UTC).date()
        for name, raw in outcome.slots.items():
            validator = validator_for(name, self.brain.settings.validators)
            value = validator(raw, today) if validator is not None else raw
            slot = self.brain.domain.slots.get(name)
            if value is not None and slot is not None:
                ok, value = coerce(slot, value)
                if ok:
                    state.slots[name] = value
        runner.parse = {"text": "", "intent": {"name": outcome.intent, "confidence": 1.0},
                        "entities": []}
        state.consecutive_fallbacks = 0
        runner.handle_intent(outcome.intent, 1.0)

    def _remember(self, state: ConversationState, ivr: IvrState) -> None:
        """Keep the IVR state and add newly visited menus to the conversation's IVR path."""
        state.ivr_state = ivr.to_dict()
        if ivr.path and (not state.ivr_path or state.ivr_path[-1] != ivr.path[-1]):
            known = state.ivr_path[-len(ivr.path):] if state.ivr_path else []
            new = [p for p in ivr.path if p not in known]
            state.ivr_path.extend(new or ivr.path[-1:])

    def _engine(self, state: ConversationState) -> IvrEngine:
        """The menus in the caller's language (the base ones if there is no translation)."""
        if self.engine is None:
            raise RuntimeError("no IVR configured")
        language = state.language or self.brain.settings.default_language
        return self.translations.get(language, self.engine)
