"""Runs the bot's side of one turn: actions, responses, forms and their events."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.dialogue import handoff as handoff_rules
from bot.dialogue.actions.registry import ActionContext, ActionRegistry
from bot.dialogue.events import (
    ActiveLoop,
    AllSlotsReset,
    AskConfirmation,
    BotMessage,
    CallerVerified,
    EndConversation,
    Event,
    FollowupAction,
    HandoffRequested,
    RetrySlot,
    SlotSet,
    UtterResponse,
)
from bot.dialogue.forms import next_slot, trigger_intent_values
from bot.dialogue.handoff import HandoffDecision
from bot.dialogue.policy import PolicyInput, RulePolicy
from bot.dialogue.responses import ResponseRenderer
from bot.dialogue.settings import DialogueSettings
from bot.dialogue.state import ConversationState, PendingConfirmation, Turn
from bot.training_data.model import Domain

log = logging.getLogger(__name__)
MAX_CHAINED_ACTIONS = 12
BUILTIN_REPEAT = "action_repeat_last"


@dataclass(frozen=True)
class EngineParts:
    """The parts of the engine a turn needs (all read-only)."""

    domain: Domain
    policy: RulePolicy
    renderer: ResponseRenderer
    actions: ActionRegistry
    settings: DialogueSettings
    backoffice: Any = None


@dataclass
class TurnOutput:
    """What the bot does this turn, collected as it happens."""

    messages: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    handoff: HandoffDecision | None = None
    hangup: bool = False
    repeated: bool = False
    ivr_timeout: float | None = None


class TurnRunner:
    """Executes actions against one conversation state, collecting the bot's output."""

    def __init__(self, brain: EngineParts, state: ConversationState, parse: Mapping[str, Any],
                 now: float) -> None:
        self.parse: Mapping[str, Any]
        self.brain, self.state, self.parse, self.now = brain, state, parse, now
        self.out = TurnOutput()
        self._chained = 0
        self._said: set[str] = set()

    @property
    def intent(self) -> str | None:
        name = (self.parse.get("intent") or {}).get("name")
        return str(name) if name else None

    @property
    def confidence(self) -> float:
        value = (self.parse.get("intent") or {}).get("confidence")
        return float(value) if isinstance(value, (int, float)) else 0.0

    @property
    def language(self) -> str:
        """The language the bot answers in: the caller's, else the line's default."""
        return self.state.language or self.brain.settings.default_language

    # Saying things

    def say(self, name: str, extra: Mapping[str, Any] | None = None) -> None:
        """Say a domain response (or the engine's built-in text of that name)."""
        times = self.state.response_counts.get(name, 0)
        language = self.language
        text = self.brain.renderer.render(name, self.state.slots, channel=self.state.channel,
                                          times_said=times, extra=extra, language=language)
        if text is None:
            text = self.brain.settings.text(name, language)
        if text is None:
            log.warning("no response %s in the domain", name)
            return
        self.state.response_counts[name] = times + 1
        self._said.add(name)
        self.say_text(text)

    def say_text(self, text: str) -> None:
        if text:
            self.out.messages.append(text)

    def repeat_last(self) -> None:
        self.out.repeated = True
        if self.state.last_bot_messages:
            self.out.messages.extend(self.state.last_bot_messages)
        else:
            self.say("utter_nothing_to_repeat")

    # Actions

    def run_actions(self, names: tuple[str, ...] | list[str]) -> None:
        for name in names:
            if self.out.handoff is not None or self.out.hangup:
                return
            form_before = self.state.active_form
            self.run_action(name)
            if self.state.active_form is not None and form_before is None:
                return  # a form (re)opened: it now waits for the caller
            latest = self.state.last_action
            if latest != name and self.brain.policy.asks_yes_no(latest):
                return  # the action's follow-up asked the caller a question: wait for the answer

    def run_action(self, name: str, *, confirmed: bool = False) -> None:
        self._chained += 1
        if self._chained > MAX_CHAINED_ACTIONS:
            log.error("action loop stopped at %s", name)
            return
        self.out.actions.append(name)
        if name == "action_listen":
            return
        if name in self.brain.domain.forms:
            self.activate_form(name)
            return
        if name == "action_deactivate_loop":
            self.deactivate_form()
        elif name == BUILTIN_REPEAT and name not in self.brain.actions:
            self.repeat_last()
            return  # a repeat leaves `last_action` as it was
        elif name == "action_handoff" and name not in self.brain.actions:
            self.request_handoff("", intent=self.intent)
        elif name == "action_restart":
            self.state.slots.clear()
            self.deactivate_form()
        elif name.startswith("utter_"):
            self.say(name)
        elif name in self.brain.actions:
            if self._run_custom(name, confirmed):
                self._hangup_after(name)
                return  # as in Rasa, the follow-up action is the latest action
        else:
            log.warning("unknown action %s", name)
        self.state.last_action = name
        self._hangup_after(name)

    def _hangup_after(self, name: str) -> None:
        if name in self.brain.settings.hangup_actions:
            self.out.hangup = True

    def _run_custom(self, name: str, confirmed: bool) -> bool:
        """Run a Python action and carry out its events; True if it handed over to a follow-up action."""
        settings, state = self.brain.settings, self.state
        network_number = state.caller_number if state.channel in settings.voice_channels else None
        context = ActionContext(state=state, domain=self.brain.domain,
                                backoffice=self.brain.backoffice, latest_message=self.parse,
                                confirmed=confirmed, now=self.now, network_number=network_number,
                                verification_attempts=settings.verification_attempts)
        try:
            events = self.brain.actions.run(name, context)
        except Exception:  # an action bug must not drop the call
            log.exception("action %s failed", name)
            self.say("utter_action_failed")
            self.request_handoff(handoff_rules.ACTION_REQUEST, intent=self.intent)
            return False
        self.apply(events)
        return any(isinstance(e, FollowupAction) for e in events)

    def apply(self, events: list[Event]) -> None:
        """Carry out what an action asked for."""
        for event in events:
            if isinstance(event, SlotSet):
                self.state.slots[event.name] = event.value
            elif isinstance(event, BotMessage):
                self.say_text(event.text)
            elif isinstance(event, UtterResponse):
                self.say(event.name, dict(event.values))
            elif isinstance(event, HandoffRequested):
                self.request_handoff(event.reason, skill=event.skill, intent=self.intent)
            elif isinstance(event, FollowupAction):
                self.run_action(event.name)
            elif isinstance(event, ActiveLoop):
                if event.name:
                    self.activate_form(event.name)
                else:
                    self.deactivate_form()
            elif isinstance(event, RetrySlot):
                self.retry_slot(event.slot, ask=event.ask)
            elif isinstance(event, AskConfirmation):
                self.state.pending_confirmation = PendingConfirmation(
                    event.action, event.prompt, event.on_deny)
                self.say_text(event.prompt)
            elif isinstance(event, EndConversation):
                self.out.hangup = True
            elif isinstance(event, AllSlotsReset):
                self.state.slots.clear()
            elif isinstance(event, CallerVerified):
                self.state.verified[event.customer_id] = event.method

    def handle_intent(self, intent: str, confidence: float) -> None:
        """Run what the rules say for this intent (or `utter_<intent>`), then any handoff."""
        state = self.state
        entities = tuple(str(e.get("entity")) for e in self.parse.get("entities") or [])
        rule = self.brain.policy.predict(PolicyInput(
            intent=intent, entities=entities, active_form=state.active_form, slots=state.slots,
            last_action=state.last_action,
            conversation_start=sum(t.role == "user" for t in state.transcript) <= 1,
        ))
        if rule is not None:
            self.run_actions(rule.actions)
        elif self.brain.renderer.has(f"utter_{intent}"):
            self.run_action(f"utter_{intent}")
        else:
            self.run_action("utter_default")
        settings = self.brain.settings.handoff
        needs = handoff_rules.rule_for(settings, intent, confidence)
        if needs is not None and self.out.handoff is None:
            reason = (handoff_rules.CONFIGURED_RULE if needs in settings.rules
                      else handoff_rules.INTENT_NEEDS_AGENT)
            self.request_handoff(reason, skill=needs.skill, intent=intent,
                                 priority=needs.priority)

    # Forms

    def activate_form(self, name: str) -> None:
        form = self.brain.domain.forms[name]
        if self.state.active_form != name:
            if name != self.state.last_completed_form:
                self.state.form_failures = {}
            self.state.active_form = name
            if self.intent:
                self.state.slots.update(trigger_intent_values(self.brain.domain, name,
                                                              self.intent))
        self.state.last_action = name
        missing = next_slot(form, self.state.slots)
        if missing is None:
            self.complete_form()
        else:
            self.ask_slot(missing)

    def ask_slot(self, slot: str) -> None:
        form = self.state.active_form or ""
        self.state.requested_slot = slot
        specific = f"utter_ask_{form}_{slot}"
        self.say(specific if self.brain.renderer.has(specific) else f"utter_ask_{slot}")

    def retry_slot(self, slot: str, *, ask: bool) -> None:
        """Clear a wrong value and reopen the form that collects it (a form failure)."""
        state = self.state
        self.state.slots[slot] = None
        forms = self.brain.domain.forms
        candidates = [state.active_form, state.last_completed_form,
                      *(name for name, form in forms.items() if slot in form.required_slots)]
        form = next((f for f in candidates if f and slot in forms[f].required_slots), None)
        failures = state.form_failures.get(slot, 0) + 1
        state.form_failures[slot] = failures
        if failures >= self.brain.settings.form_failures_before_handoff:
            self.request_handoff(handoff_rules.FORM_FAILED, intent=self.intent)
            return
        if form is None:
            if ask:
                self.say(f"utter_ask_{slot}")
            return
        state.active_form, state.requested_slot = form, slot
        if ask:
            self.ask_slot(slot)

    def complete_form(self) -> None:
        form = self.state.active_form
        self.deactivate_form(reset_failures=False)
        if form is None:
            return
        self.state.last_completed_form = form
        self.run_actions(self.brain.policy.submit_actions(form, self.state.slots))

    def deactivate_form(self, *, reset_failures: bool = True) -> None:
        self.state.active_form = None
        self.state.requested_slot = None
        if reset_failures:
            self.state.form_failures = {}

    # Handoff

    def request_handoff(self, reason: str, *, skill: str | None = None,
                        intent: str | None = None, priority: int | None = None,
                        announce: bool = True) -> None:
        if self.out.handoff is not None:
            return
        if announce and "utter_handoff" not in self._said:
            self.say("utter_handoff")
        self.deactivate_form()
        self.state.pending_confirmation = None
        settings = self.brain.settings.handoff
        rule = handoff_rules.rule_for(settings, intent or "", self.confidence)
        if not reason:  # an action asked for a person: say why from the caller's request
            text = str(self.parse.get("text") or "")
            reason = (handoff_rules.CALLER_ASKED if handoff_rules.asks_for_human(intent, text)
                      else handoff_rules.INTENT_NEEDS_AGENT if rule is not None
                      else handoff_rules.ACTION_REQUEST)
        if rule is not None:
            skill = skill or rule.skill
            priority = priority if priority is not None else rule.priority
        self.out.handoff = handoff_rules.decide(
            self._state_with_output(), reason=reason, settings=self.brain.settings.handoff,
            now=self.now, intent=intent, skill=skill, priority=priority)

    def _state_with_output(self) -> ConversationState:
        """The state with this turn's bot messages in the transcript (for the agent)."""
        copy = ConversationState.from_dict(self.state.to_dict())
        copy.transcript.extend(Turn("bot", m, self.now) for m in self.out.messages)
        return copy

