"""A RulePolicy-like matcher: which actions follow an intent, given the conversation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.training_data.model import Domain, Rule

NULL = "null"
YES_NO_INTENTS = ("affirm", "deny")
_SET_LIKE_TYPES = {"text", "any", "float", "list"}


@dataclass(frozen=True)
class CompiledRule:
    """One user turn of a rule: the trigger, its conditions and the actions that follow."""

    name: str
    intent: str | None
    actions: tuple[str, ...]
    prior_action: str | None = None  # a multi-turn rule's previous bot action
    active_loop: str | None = None  # form that must be active; "null": none may be
    slots: tuple[tuple[str, Any], ...] = ()
    entities: tuple[str, ...] = ()
    conversation_start: bool = False
    submits_form: str | None = None  # runs when this form has all its slots

    @property
    def specificity(self) -> int:
        return (
            (4 if self.prior_action else 0)
            + (2 if self.active_loop else 0)
            + len(self.slots)
            + len(self.entities)
            + (1 if self.conversation_start else 0)
        )


@dataclass(frozen=True)
class PolicyInput:
    """What the matcher looks at."""

    intent: str
    entities: tuple[str, ...]
    active_form: str | None
    slots: Mapping[str, Any]
    last_action: str | None
    conversation_start: bool = False


@dataclass
class RulePolicy:
    """Rules compiled from rules.yml (and stories), matched most-specific first."""

    domain: Domain
    rules: list[CompiledRule] = field(default_factory=list)

    @classmethod
    def from_rules(cls, domain: Domain, rules: list[Rule]) -> RulePolicy:
        compiled: list[CompiledRule] = []
        for rule in rules:
            compiled.extend(compile_rule(rule, set(domain.forms)))
        return cls(domain, compiled)

    def predict(self, query: PolicyInput) -> CompiledRule | None:
        """The most specific rule for this intent whose conditions hold."""
        best: CompiledRule | None = None
        for rule in self.rules:
            if rule.intent != query.intent or not self._holds(rule, query):
                continue
            if best is None or rule.specificity > best.specificity:
                best = rule
        return best

    def submit_actions(self, form: str, slots: Mapping[str, Any]) -> tuple[str, ...]:
        """Actions a form-submit rule runs once `form` is complete."""
        best: CompiledRule | None = None
        for rule in self.rules:
            if rule.submits_form != form:
                continue
            if not all(self._slot_holds(n, v, slots) for n, v in rule.slots):
                continue
            if best is None or rule.specificity > best.specificity:
                best = rule
        return best.actions if best else ()

    def predict_in_form(self, intent: str, form: str, slots: Mapping[str, Any],
                        last_action: str | None) -> CompiledRule | None:
        """A rule written for this intent while `form` is active (an interjection)."""
        rule = self.predict(PolicyInput(intent, (), form, slots, last_action))
        return rule if rule is not None and rule.active_loop == form else None

    def has_rule_for(self, intent: str) -> bool:
        return any(r.intent == intent for r in self.rules)

    def asks_yes_no(self, action: str | None) -> bool:
        """The rules expect a yes or a no right after this bot action (e.g. `utter_confirm_cancel`), so a
        voice call may end the caller's turn sooner."""
        return action is not None and any(
            r.prior_action == action and r.intent in YES_NO_INTENTS for r in self.rules)

    def _holds(self, rule: CompiledRule, query: PolicyInput) -> bool:
        if rule.conversation_start and not query.conversation_start:
            return False
        if rule.prior_action is not None and rule.prior_action != query.last_action:
            return False
        if rule.active_loop == NULL and query.active_form is not None:
            return False
        if rule.active_loop not in (None, NULL) and rule.active_loop != query.active_form:
            return False
        if any(e not in query.entities for e in rule.entities):
            return False
        return all(self._slot_holds(n, v, query.slots) for n, v in rule.slots)

    def _slot_holds(self, name: str, expected: Any, slots: Mapping[str, Any]) -> bool:
        actual = slots.get(name)
        slot = self.domain.slots.get(name)
        if expected is None:
            return actual is None
        if slot is not None and slot.type in _SET_LIKE_TYPES:
            return actual is not None  # Rasa featurises these slots as set / not set
        return bool(actual == expected)


def compile_rule(rule: Rule, forms: set[str]) -> list[CompiledRule]:
    """Split a rule into one CompiledRule per user turn (plus a form-submit part)."""
    active_loop: str | None = None
    slots: list[tuple[str, Any]] = []
    for step in rule.condition:
        if step.active_loop is not None:
            active_loop = step.active_loop
        slots.extend(step.slot_was_set)
    out: list[CompiledRule] = []
    intent: str | None = None
    entities: tuple[str, ...] = ()
    actions: list[str] = []
    prior: str | None = None
    submits: str | None = None
    started = False

    def flush() -> None:
        if intent is not None or submits is not None:
            out.append(CompiledRule(
                name=rule.name, intent=intent, actions=tuple(actions), prior_action=prior,
                active_loop=active_loop if not out else None, slots=tuple(slots) if not out else (),
                entities=entities, conversation_start=rule.conversation_start and not out,
                submits_form=submits,
            ))

    for step in rule.steps:
        if step.intent is not None:
            flush()
            prior = actions[-1] if actions else prior
            intent, entities, actions, submits, started = step.intent, (), [], None, True
            entities = tuple(name for name, _ in step.entities)
        elif step.action is not None:
            actions.append(step.action)
        elif step.active_loop is not None:
            if step.active_loop == NULL and actions and actions[-1] in forms and intent is None:
                submits, actions = actions[-1], []
        elif step.slot_was_set and not started:
            slots.extend(step.slot_was_set)
    flush()
    return out
