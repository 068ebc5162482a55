"""A small dialogue for the engine's tests: its domain, rules and IVR menu as YAML text, a keyword NLU instead of a
model, the two order actions, and an engine made of them."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from bot.dialogue.actions.registry import ActionContext, ActionRegistry
from bot.dialogue.engine import DialogueEngine
from bot.dialogue.events import BotMessage, Event, SlotSet, UtterResponse
from bot.dialogue.settings import DialogueSettings
from bot.dialogue.store import InMemorySessionStore
from bot.ivr import IvrEngine, load_ivr_text
from bot.training_data import load_domain_text, load_rules_text

DOMAIN = """
version: "3.1"
intents: [greet, goodbye, affirm, deny, repeat, check_order_status, cancel_order, complaint,
  talk_to_human, opening_hours, thank]
entities: [order_number]
slots:
  order_number:
    type: text
    mappings: [{type: from_entity, entity: order_number}]
  order_status:
    type: categorical
    values: [shipped, processing]
    mappings: [{type: custom}]
forms:
  order_form: {required_slots: [order_number]}
  cancel_form: {required_slots: [order_number]}
responses:
  utter_greet: [{text: "Hello, how can I help?"}]
  utter_goodbye: [{text: "Goodbye!"}]
  utter_default: [{text: "Sorry, I didn't get that."}]
  utter_handoff: [{text: "Connecting you to a colleague."}]
  utter_ask_order_number: [{text: "What is your order number?"}, {text: "Your order number, please?"}]
  utter_invalid_order_number: [{text: "{order_number} is not an order number."}]
  utter_opening_hours: [{text: "We open at 9."}]
  utter_anything_else: [{text: "Anything else?"}]
  utter_confirm_cancel: [{text: "Cancel order {order_number}?"}]
  utter_cancel_kept: [{text: "Order {order_number} stays."}]
  utter_order_status:
  - condition: [{type: slot, name: order_status, value: shipped}]
    text: "Order {order_number} has shipped."
  - text: "Order {order_number} is {order_status}."
actions: [action_check_order_status, action_cancel_order]
session_config: {session_expiration_time: 60, carry_over_slots_to_new_session: true}
"""
RULES = """
version: "3.1"
rules:
- rule: greet
  steps: [{intent: greet}, {action: utter_greet}]
- rule: bye
  steps: [{intent: goodbye}, {action: utter_goodbye}]
- rule: hours
  steps: [{intent: opening_hours}, {action: utter_opening_hours}, {action: utter_anything_else}]
- rule: activate order form
  steps: [{intent: check_order_status}, {action: order_form}, {active_loop: order_form}]
- rule: submit order form
  condition: [{active_loop: order_form}]
  steps: [{action: order_form}, {active_loop: null}, {action: action_check_order_status},
          {action: utter_anything_else}]
- rule: activate cancel form
  steps: [{intent: cancel_order}, {action: cancel_form}, {active_loop: cancel_form}]
- rule: submit cancel form
  condition: [{active_loop: cancel_form}]
  steps: [{action: cancel_form}, {active_loop: null}, {action: utter_confirm_cancel}]
- rule: confirm cancel
  steps: [{action: utter_confirm_cancel}, {intent: affirm}, {action: action_cancel_order}]
- rule: keep order
  steps: [{action: utter_confirm_cancel}, {intent: deny}, {action: utter_cancel_kept}]
- rule: complaint
  steps: [{intent: complaint}, {action: utter_handoff}, {action: action_handoff}]
- rule: fallback
  steps: [{intent: nlu_fallback}, {action: utter_default}]
"""
IVR = """
version: "1"
ivr:
  start: main
  menus:
    main:
      prompt: "For orders press 1. To talk again press 9."
      options:
        "1":
          collect: {slot: order_number, prompt: "Enter your order number then hash.",
                    min_digits: 5, max_digits: 8, then: {intent: check_order_status}}
        "9": {speech: true, prompt: "Okay, go ahead."}
"""
WORDS = [("hello", "greet"), ("bye", "goodbye"), ("yes", "affirm"), ("no", "deny"),
         ("again", "repeat"), ("where", "check_order_status"), ("cancel", "cancel_order"),
         ("complain", "complaint"), ("open", "opening_hours"), ("thanks", "thank")]


class ScriptedNLU:
    """Keyword NLU: first keyword wins; 5-8 digit numbers become order_number entities."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def parse(self, text: str) -> dict[str, Any]:
        self.calls.append(text)
        entities = [{"entity": "order_number", "value": m.group(0), "start": m.start(),
                     "end": m.end()} for m in re.finditer(r"\b\d{5,8}\b", text)]
        for word, intent in WORDS:
            if re.search(rf"\b{word}\b", text.lower()):
                return {"text": text, "intent": {"name": intent, "confidence": 0.95},
                        "entities": entities}
        return {"text": text, "intent": {"name": "nlu_fallback", "confidence": 0.1},
                "entities": entities}


ORDERS = {"48215": "shipped", "41877": "processing"}


def make_registry() -> ActionRegistry:
    registry = ActionRegistry()

    @registry.register("action_check_order_status")
    def check(ctx: ActionContext) -> list[Event]:
        status = ORDERS.get(str(ctx.slot("order_number")))
        if status is None:
            return [BotMessage(f"I can't find order {ctx.slot('order_number')}.")]
        return [SlotSet("order_status", status), UtterResponse("utter_order_status")]

    def cancel(ctx: ActionContext) -> list[Event]:
        return [BotMessage(f"Order {ctx.slot('order_number')} is cancelled.")]

    registry.register("action_cancel_order", cancel)
    return registry


def scripted_engine(now: Callable[[], float], *, raise_errors: bool = True) -> DialogueEngine:
    """An engine on this dialogue with the keyword NLU, an IVR and sessions in memory, on the clock `now`."""
    return DialogueEngine(
        load_domain_text(DOMAIN, "domain.yml"), load_rules_text(RULES, "rules.yml"), ScriptedNLU(),
        make_registry(), IvrEngine(load_ivr_text(IVR)), InMemorySessionStore(),
        DialogueSettings(raise_errors=raise_errors), now)
