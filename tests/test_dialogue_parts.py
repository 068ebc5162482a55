"""Unit tests of the dialogue manager's parts: state, store, policy, responses, forms, handoff."""

from __future__ import annotations

from datetime import date

import pytest

from bot.dialogue.forms import FormContext, coerce, extract_slots, short_answer
from bot.dialogue.handoff import HandoffSettings, asks_for_human, decide
from bot.dialogue.policy import PolicyInput, RulePolicy, compile_rule
from bot.dialogue.responses import ResponseRenderer, fill_template
from bot.dialogue.state import ConversationState, IntentSeen, PendingConfirmation, Turn
from bot.dialogue.store import InMemorySessionStore
from bot.dialogue.validation import (
    DEFAULT_VALIDATORS,
    spoken_digits,
    validate_date,
    validate_email,
    validate_order_number,
    validate_repair_number,
)
from bot.training_data import load_domain_text, load_rules_text
from callpilot.brains import session_store
from callpilot.settings import Settings
from tests.clocks import FakeClock
from tests.dialogue_fixtures import DOMAIN, RULES

TODAY = date(2025, 6, 2)  # a Monday


def full_state() -> ConversationState:
    state = ConversationState.new("s1", now=10.0, caller_number="+15550100", channel="voice")
    state.slots = {"order_number": "48215", "confirm_cancel": True, "amount": 1.5, "x": None}
    state.active_form, state.requested_slot = "order_form", "order_number"
    state.form_failures = {"order_number": 1}
    state.transcript = [Turn("user", "hi ☎ ünïcode", 11.0, "greet", 0.9),
                        Turn("user", "", 12.0, dtmf="1#"), Turn("bot", "Hello", 12.5)]
    state.intents_seen = [IntentSeen("greet", 0.9, 11.0)]
    state.pending_confirmation = PendingConfirmation("action_cancel_order", "Sure?", None)
    state.ivr_state = {"mode": "menu", "menu": "main", "path": ["main"], "slots": {}}
    state.ivr_path = ["main", "1:orders"]
    state.latest_handoff = {"skill": "orders", "transcript": [{"role": "user"}]}
    state.set_mode("ivr")
    return state


def test_state_round_trips_exactly() -> None:
    state = full_state()
    again = ConversationState.from_json(state.to_json())
    assert again == state
    assert again.to_json() == state.to_json()
    assert isinstance(again.transcript[0], Turn)
    assert isinstance(again.pending_confirmation, PendingConfirmation)


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="mode"):
        full_state().set_mode("dancing")


def test_in_memory_store_keeps_json() -> None:
    store = InMemorySessionStore()
    state = full_state()
    store.save(state)
    assert store.raw("s1") == state.to_json()
    loaded = store.load("s1")
    assert loaded == state and loaded is not state
    store.delete("s1")
    assert store.load("s1") is None and len(store) == 0


def test_in_memory_store_forgets_idle_states_and_is_bounded() -> None:
    clock = FakeClock(0.0)
    store = InMemorySessionStore(max_sessions=3, ttl_s=60, clock=clock)
    for sender in ("a", "b", "c"):
        store.save(ConversationState.new(sender, now=0.0))
    assert store.load("a") is not None  # "a" was used last: "b" is now the least recently used
    store.save(ConversationState.new("d", now=0.0))
    assert len(store) == 3 and store.load("b") is None
    assert {s for s in "acd" if store.load(s) is not None} == {"a", "c", "d"}
    clock.advance(59)
    store.save(ConversationState.new("d", now=59.0))  # saved again: a new lease
    clock.advance(2)
    assert store.load("a") is None and store.load("c") is None  # idle for the TTL: gone
    assert store.load("d") is not None
    store.save(ConversationState.new("e", now=61.0))
    assert len(store) == 2  # the expired ones do not count against the bound
    # Traffic from many senders never grows it past the bound.
    for n in range(1000):
        store.save(ConversationState.new(f"flood-{n}", now=61.0))
    assert len(store) == 3


def test_the_web_apps_session_store_is_bounded_by_the_settings() -> None:
    settings = Settings.load(None, {}, session_store_max=5, handoff={"session_ttl_s": 120})
    store = session_store(settings)
    assert isinstance(store, InMemorySessionStore) and (store.max_sessions, store.ttl_s) == (5, 120)


# Policy

def test_rules_compile_into_turns_with_priors_and_submits() -> None:
    domain = load_domain_text(DOMAIN, "d.yml")
    rules = load_rules_text(RULES, "r.yml")
    compiled = [c for r in rules for c in compile_rule(r, set(domain.forms))]
    confirm = next(c for c in compiled if c.name == "confirm cancel")
    assert (confirm.intent, confirm.prior_action, confirm.actions) == (
        "affirm", "utter_confirm_cancel", ("action_cancel_order",))
    submit = next(c for c in compiled if c.name == "submit order form")
    assert submit.submits_form == "order_form" and submit.intent is None
    assert submit.actions == ("action_check_order_status", "utter_anything_else")


def test_policy_prefers_specific_rules_and_checks_conditions() -> None:
    domain = load_domain_text(DOMAIN, "d.yml")
    rules = load_rules_text(RULES + """
- rule: affirm while shipped
  condition: [{slot_was_set: [{order_status: shipped}]}]
  steps: [{intent: affirm}, {action: utter_goodbye}]
""", "r.yml")
    policy = RulePolicy.from_rules(domain, rules)

    def predict(intent: str, last: str | None, slots: dict[str, object]) -> tuple[str, ...]:
        rule = policy.predict(PolicyInput(intent, (), None, slots, last))
        return rule.actions if rule else ()

    assert predict("affirm", "utter_confirm_cancel", {}) == ("action_cancel_order",)
    assert predict("affirm", None, {"order_status": "shipped"}) == ("utter_goodbye",)
    assert predict("affirm", None, {"order_status": "processing"}) == ()
    assert predict("greet", None, {}) == ("utter_greet",)


# Responses

def test_conditional_variants_and_templates() -> None:
    renderer = ResponseRenderer(load_domain_text(DOMAIN, "d.yml"))
    slots = {"order_number": "48215", "order_status": "shipped"}
    assert renderer.render("utter_order_status", slots) == "Order 48215 has shipped."
    slots["order_status"] = "processing"
    assert renderer.render("utter_order_status", slots) == "Order 48215 is processing."
    assert renderer.render("utter_ask_order_number", {}, times_said=1) == (
        "Your order number, please?")
    assert renderer.render("utter_nope", {}) is None
    assert fill_template("Hi {name}, {order_number}!", {"name": 2.0}, {"order_number"}) == "Hi 2, !"
    assert fill_template("{unknown} stays", {}, set()) == "{unknown} stays"


# Validation and slot filling

@pytest.mark.parametrize(("said", "expected"), [
    ("four eight two one five", "48215"), ("48 215", "48215"), ("double four oh nine oh", "44090"),
    ("it's 4 1 8 7 7", "41877"), ("my order is 4302291 thanks", "4302291"), ("123", None),
    ("123456789", None), ("no idea", None),
])
def test_order_numbers(said: str, expected: str | None) -> None:
    assert validate_order_number(said, TODAY) == expected


@pytest.mark.parametrize(("said", "expected"), [
    ("R104233", "R104233"), ("r one zero four two three three", "R104233"),
    ("are 104 233", "R104233"), ("104233", "R104233"), ("R10423", None), ("hello", None),
])
def test_repair_numbers(said: str, expected: str | None) -> None:
    assert validate_repair_number(said, TODAY) == expected


def test_emails_dates_and_digits() -> None:
    assert validate_email("Sarah dot Miller at example dot com", TODAY) == "sarah.miller@example.com"
    assert validate_email("not an email", TODAY) is None
    assert validate_date("tomorrow", TODAY) == "2025-06-03"
    assert validate_date("on friday", TODAY) == "2025-06-06"
    assert validate_date("12 march", TODAY) == "2026-03-12"
    assert validate_date("2025-07-01", TODAY) == "2025-07-01"
    assert validate_date("31/02/2025", TODAY) is None
    assert spoken_digits("triple five one") == "5551"


def test_extraction_validates_entities_and_bare_numbers() -> None:
    domain = load_domain_text(DOMAIN, "d.yml")
    ctx = FormContext("order_form", "order_number", TODAY)
    parse = {"text": "four eight two one five", "intent": {"name": "nlu_fallback"},
             "entities": []}
    assert extract_slots(domain, parse, ctx, DEFAULT_VALIDATORS).values == {
        "order_number": "48215"}
    bad = {"text": "it's 123", "intent": {"name": "inform"},
           "entities": [{"entity": "order_number", "value": "123"}]}
    result = extract_slots(domain, bad, ctx, DEFAULT_VALIDATORS)
    assert result.values == {} and result.invalid == {"order_number": "123"}
    outside = extract_slots(domain, parse, FormContext(None, None, TODAY), DEFAULT_VALIDATORS)
    assert outside.values == {}


def test_coercion_and_short_answers() -> None:
    domain = load_domain_text(DOMAIN, "d.yml")
    assert coerce(domain.slots["order_status"], "SHIPPED") == (True, "shipped")
    assert coerce(domain.slots["order_status"], "lost") == (False, None)
    assert short_answer("uh it's Boston") == "Boston"
    assert short_answer("I would like to know where my parcel is please") is None
    assert short_answer("12345") is None


# Handoff

def test_handoff_decision_has_context_and_summary() -> None:
    state = ConversationState.new("s1", now=0.0, caller_number="+15550100")
    state.transcript = [Turn("user", "my dryer is broken and smoking", 1.0, "technical_fault", 0.8)]
    state.intents_seen = [IntentSeen("technical_fault", 0.8, 1.0)]
    state.slots = {"product": "dryer", "x": None}
    state.ivr_path = ["main", "3:repairs"]
    decision = decide(state, reason="intent_needs_agent", settings=HandoffSettings(), now=5.0,
                      intent="technical_fault")
    assert (decision.skill, decision.priority) == ("tech", 2)
    assert decision.slots == {"product": "dryer"}
    data = decision.to_dict()
    assert data["transcript"][0]["text"] == "my dryer is broken and smoking"
    assert data["intents"] == [{"intent": "technical_fault", "confidence": 0.8, "timestamp": 1.0}]
    for piece in ("+15550100", "a fault with the dryer", "smoking", "product dryer",
                  "main > 3:repairs", "Queue: tech"):
        assert piece in decision.summary
    # an agent's note: no internal names, at most three sentences
    assert "_" not in decision.summary and "=" not in decision.summary
    assert decision.summary.count(". ") <= 3, decision.summary


def test_the_agent_note_says_what_is_wanted_now_and_what_the_bot_did_before() -> None:
    state = ConversationState.new("s2", now=0.0, caller_number="+15550100")
    state.transcript = [Turn("user", "where is order 48215", 1.0, "check_order_status", 0.95),
                        Turn("bot", "Order 48215 is out for delivery today.", 1.5),
                        Turn("user", "and I want to cancel it", 2.0, "cancel_order", 0.9),
                        Turn("user", "just get me a person", 3.0, "talk_to_human", 0.97)]
    state.intents_seen = [IntentSeen("check_order_status", 0.95, 1.0), IntentSeen("cancel_order", 0.9, 2.0),
                          IntentSeen("talk_to_human", 0.97, 3.0)]
    state.slots = {"order_number": "48215"}
    note = decide(state, reason="caller_asked", settings=HandoffSettings(), now=5.0).summary
    assert note.startswith('Caller +15550100 needs help with cancelling order 48215: "and I want to cancel it"')
    assert "already helped with where order 48215 is" in note and "they asked for a person" in note
    assert "Left for you: cancelling order 48215" in note
    nobody = decide(ConversationState.new("s3", now=0.0), reason="repeated_fallback",
                    settings=HandoffSettings(), now=1.0).summary
    assert nobody.startswith("An anonymous caller did not say what they need.")
    assert "could not understand them twice" in nobody


def test_agent_words() -> None:
    assert asks_for_human(None, "can I talk to a real person")
    assert asks_for_human(None, "OPERATOR!")
    assert asks_for_human("talk_to_human", "")
    assert not asks_for_human("greet", "humanity is great")


def test_handoff_rules_from_config_apply() -> None:
    from bot.dialogue.handoff import handoff_settings_from_dict, rule_for

    settings = handoff_settings_from_dict({
        "rules": [{"intent": "cancel_order", "min_confidence": 0.9, "skill": "orders",
                   "priority": 2}],
        "always": ["complaint"], "skills": {"complaint": "returns"}})
    assert rule_for(settings, "cancel_order", 0.5) is None
    rule = rule_for(settings, "cancel_order", 0.95)
    assert rule is not None and (rule.skill, rule.priority) == ("orders", 2)
    complaint = rule_for(settings, "complaint", 0.1)
    assert complaint is not None and complaint.skill == "returns"
    assert rule_for(settings, "billing_dispute", 1.0) is None
    with pytest.raises(ValueError, match="intent"):
        handoff_settings_from_dict({"rules": [{"skill": "x"}]})
