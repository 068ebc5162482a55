"""Dialogue engine unit tests with a scripted NLU (hand-written parse results)."""

from __future__ import annotations

from typing import Any

import pytest

from bot.dialogue.actions.registry import ActionContext
from bot.dialogue.engine import DialogueEngine
from bot.dialogue.events import (
    AskConfirmation,
    BotMessage,
    Event,
)
from bot.dialogue.settings import DialogueSettings
from bot.dialogue.state import ConversationState
from bot.dialogue.store import InMemorySessionStore
from bot.training_data import load_domain_text, load_rules_text
from tests.clocks import FakeClock
from tests.dialogue_fixtures import DOMAIN, RULES, ScriptedNLU, make_registry, scripted_engine


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_000_000.0)


@pytest.fixture
def engine(clock: FakeClock) -> DialogueEngine:
    return scripted_engine(clock)


def test_greeting_and_rule(engine: DialogueEngine) -> None:
    assert engine.start("a", "+1555", "voice").messages == ("Hello, how can I help?",)
    turn = engine.handle_text("a", "when do you open")
    assert turn.messages == ("We open at 9.", "Anything else?")
    assert turn.actions == ("utter_opening_hours", "utter_anything_else")


def test_form_asks_validates_and_submits(engine: DialogueEngine) -> None:
    assert engine.handle_text("a", "where is my order").messages == ("What is your order number?",)
    turn = engine.handle_text("a", "one two three")
    assert turn.messages[0] == "123 is not an order number."
    assert turn.messages[1] == "Your order number, please?"  # variants rotate on re-asks
    assert turn.debug.active_form == "order_form"
    turn = engine.handle_text("a", "four eight two one five")
    assert turn.messages == ("Order 48215 has shipped.", "Anything else?")
    assert turn.debug.active_form is None
    assert turn.debug.slots["order_number"] == "48215"
    assert "action_check_order_status" in turn.actions


def test_slot_given_up_front_skips_the_question(engine: DialogueEngine) -> None:
    turn = engine.handle_text("a", "where is order 41877")
    assert turn.messages == ("Order 41877 is processing.", "Anything else?")


def test_correction_right_after_the_form(engine: DialogueEngine) -> None:
    engine.handle_text("a", "where is order 41877")
    turn = engine.handle_text("a", "no, it's 48215")
    assert turn.messages[0] == "Order 48215 has shipped."
    assert turn.debug.slots["order_number"] == "48215"


def test_correction_inside_the_form_and_stop(engine: DialogueEngine) -> None:
    engine.handle_text("a", "cancel my order")
    turn = engine.handle_text("a", "no")
    assert turn.debug.active_form is None
    assert "leave that" in turn.text.lower()


def test_topic_change_leaves_the_form(engine: DialogueEngine) -> None:
    engine.handle_text("a", "where is my order")
    turn = engine.handle_text("a", "when are you open")
    assert turn.debug.active_form is None
    assert turn.messages[0] == "We open at 9."


def test_form_fails_twice_hands_over(engine: DialogueEngine) -> None:
    engine.handle_text("a", "where is my order")
    first = engine.handle_text("a", "purple")
    assert first.handoff is None and first.debug.active_form == "order_form"
    second = engine.handle_text("a", "banana")
    assert second.handoff is not None
    assert second.handoff.reason == "form_failed"
    assert second.handoff.skill == "orders"
    assert engine.state_of("a") is not None and engine.state_of("a").mode == "handoff"  # type: ignore[union-attr]


def test_cancel_with_confirmation_yes_and_no(engine: DialogueEngine) -> None:
    assert engine.handle_text("a", "cancel order 48215").messages == ("Cancel order 48215?",)
    assert engine.handle_text("a", "yes").messages == ("Order 48215 is cancelled.",)
    engine.handle_text("b", "cancel order 41877")
    assert engine.handle_text("b", "no").messages == ("Order 41877 stays.",)


def test_correction_of_the_confirmation_question(engine: DialogueEngine) -> None:
    engine.handle_text("a", "cancel order 48215")
    turn = engine.handle_text("a", "no, it's 41877")
    assert turn.messages == ("Cancel order 41877?",)
    assert engine.handle_text("a", "yes").messages == ("Order 41877 is cancelled.",)


def test_repeat_says_the_last_messages_and_keeps_context(engine: DialogueEngine) -> None:
    engine.handle_text("a", "cancel order 48215")
    assert engine.handle_text("a", "say that again").messages == ("Cancel order 48215?",)
    assert engine.handle_text("a", "yes").messages == ("Order 48215 is cancelled.",)


def test_two_fallbacks_on_voice_open_the_ivr(engine: DialogueEngine) -> None:
    engine.start("a", "+1555", "voice")
    assert engine.handle_text("a", "blorp").messages == ("Sorry, I didn't get that.",)
    turn = engine.handle_text("a", "blorp blorp")
    assert turn.ivr_active
    assert "For orders press 1" in turn.text
    turn = engine.handle_dtmf("a", "1")
    assert turn.messages == ("Enter your order number then hash.",)
    turn = engine.handle_dtmf("a", "48215#")
    assert not turn.ivr_active
    assert turn.messages[0] == "Order 48215 has shipped."
    assert turn.debug.ivr_path[:2] == ("main", "1:collect order_number")


def test_two_fallbacks_on_text_hand_over(engine: DialogueEngine) -> None:
    engine.handle_text("a", "blorp", channel="rest")
    turn = engine.handle_text("a", "blorp blorp", channel="rest")
    assert turn.handoff is not None and turn.handoff.reason == "repeated_fallback"


def test_dtmf_zero_hands_over_and_agent_words_too(engine: DialogueEngine) -> None:
    engine.start("a", "+1555", "voice")
    assert engine.handle_text("a", "I want a human please").handoff is not None
    engine.start("b", "+1555", "voice")
    turn = engine.handle_dtmf("b", "0")
    assert turn.handoff is not None and turn.handoff.skill == "general"


def test_complaint_is_urgent_and_summarised(engine: DialogueEngine) -> None:
    engine.start("a", "+15550100", "voice")
    engine.handle_text("a", "where is order 48215")
    turn = engine.handle_text("a", "I want to complain about the driver")
    decision = turn.handoff
    assert decision is not None
    assert decision.priority == 1 and decision.reason == "intent_needs_agent"
    assert decision.slots["order_number"] == "48215"
    assert "+15550100" in decision.summary and "a complaint" in decision.summary
    assert "already helped with where order 48215 is" in decision.summary
    assert [t["role"] for t in decision.to_dict()["transcript"]][:2] == ["bot", "user"]
    assert turn.messages.count("Connecting you to a colleague.") == 1


def test_goodbye_hangs_up_and_next_message_starts_a_new_session(engine: DialogueEngine) -> None:
    engine.handle_text("a", "where is order 48215")
    assert engine.handle_text("a", "bye").hangup
    turn = engine.handle_text("a", "hello")
    assert turn.messages == ("Hello, how can I help?",)
    state = engine.state_of("a")
    assert state is not None and state.session_count == 2 and state.slots["order_number"] == "48215"


def test_session_expiry_starts_a_new_session(engine: DialogueEngine, clock: FakeClock) -> None:
    engine.handle_text("a", "where is my order")
    clock.advance(61 * 60)
    turn = engine.handle_text("a", "hello")
    assert turn.debug.active_form is None
    state = engine.state_of("a")
    assert state is not None and state.session_count == 2


def test_no_input_twice_opens_the_ivr(engine: DialogueEngine) -> None:
    engine.start("a", None, "voice")
    first = engine.handle_no_input("a")
    assert "didn't hear" in first.text and "Hello, how can I help?" in first.text
    assert engine.handle_no_input("a").ivr_active


def test_speech_unavailable_enters_ivr_and_back_to_speech(engine: DialogueEngine) -> None:
    engine.start("a", None, "voice")
    assert engine.speech_unavailable("a").messages == (
        "Sorry, I can't understand speech right now. Let's use the keypad instead.",
        "For orders press 1. To talk again press 9.")
    assert engine.speech_unavailable("a").messages == ()  # already on the keypad: nothing said twice
    turn = engine.handle_dtmf("a", "9")
    assert not turn.ivr_active and turn.messages == ("Okay, go ahead.",)
    assert engine.handle_text("a", "hello").messages == ("Hello, how can I help?",)


def test_digits_typed_during_a_form_fill_the_slot(engine: DialogueEngine) -> None:
    engine.handle_text("a", "where is my order")
    turn = engine.handle_dtmf("a", "48215#")
    assert turn.messages[0] == "Order 48215 has shipped."


def test_state_survives_another_engine(engine: DialogueEngine, clock: FakeClock) -> None:
    engine.handle_text("a", "where is my order")
    other = DialogueEngine(engine.brain.domain, [], ScriptedNLU(), make_registry(), None,
                           engine.store, DialogueSettings(raise_errors=True), clock)
    other.brain.policy.rules.extend(engine.brain.policy.rules)
    turn = other.handle_text("a", "48215")
    assert turn.messages[0] == "Order 48215 has shipped."


def test_confirmation_events_from_an_action(engine: DialogueEngine) -> None:
    registry = engine.brain.actions

    def ask(ctx: ActionContext) -> list[Event]:
        if ctx.confirmed:
            return [BotMessage("Done.")]
        return [AskConfirmation("action_wipe", "Really wipe?", "utter_anything_else")]

    registry.register("action_wipe", ask)
    engine.brain.policy.rules.append(
        type(engine.brain.policy.rules[0])(name="wipe", intent="thank", actions=("action_wipe",)))
    assert engine.handle_text("a", "thanks").messages == ("Really wipe?",)
    assert engine.handle_text("a", "yes").messages == ("Done.",)
    engine.handle_text("b", "thanks")
    assert engine.handle_text("b", "no").messages == ("Anything else?",)


def test_saved_state_is_json_and_round_trips(engine: DialogueEngine) -> None:
    engine.handle_text("a", "where is my order")
    engine.handle_dtmf("a", "1")
    store = engine.store
    assert isinstance(store, InMemorySessionStore)
    raw = store.raw("a")
    assert raw is not None
    state = ConversationState.from_json(raw)
    assert state.to_json() == raw
    assert state.ivr_state is not None and state.mode == "ivr"


def test_configured_handoff_rule(clock: FakeClock) -> None:
    from bot.dialogue.handoff import HandoffRule, HandoffSettings

    settings = DialogueSettings(raise_errors=True, handoff=HandoffSettings(
        rules=(HandoffRule("opening_hours", "general", min_confidence=0.9, priority=4),)))
    engine = DialogueEngine(load_domain_text(DOMAIN, "d.yml"), load_rules_text(RULES, "r.yml"),
                            ScriptedNLU(), make_registry(), None, None, settings, clock)
    turn = engine.handle_text("a", "when do you open")
    assert turn.messages[0] == "We open at 9."  # the rule still answers first
    assert turn.handoff is not None
    assert (turn.handoff.reason, turn.handoff.priority) == ("configured_rule", 4)


def test_a_question_the_rules_answer_with_yes_or_no_is_flagged_for_voice(engine: DialogueEngine) -> None:
    assert engine.handle_text("a", "cancel").messages == ("What is your order number?",)
    asked = engine.handle_text("a", "four eight two one five")
    assert asked.messages == ("Cancel order 48215?",)
    assert asked.expects_yes_no  # the rules follow utter_confirm_cancel with affirm / deny
    assert not engine.handle_text("b", "where is my order").expects_yes_no  # "What is your order number?"


def test_keys_typed_one_by_one_are_one_redacted_run_in_the_state(nlu_engine: Any) -> None:
    """A card typed on the keypad (after two menu keys) is never stored, not even spread over one-key lines:
    the state (Redis, when shared) and the handoff's transcript hold the run redacted whole."""
    from pathlib import Path

    from bot.dialogue.factory import build_engine
    from callpilot.records.redaction import redact_stored

    card = "4111111111111111"
    engine = build_engine(Path(__file__).resolve().parent.parent / "nlu_data", nlu_engine,
                          settings=DialogueSettings(raise_errors=True), now=lambda: 1.75e9,
                          redact=redact_stored)
    engine.start("keys", "+15550100", "voice")
    for key in "11" + card + "#":
        engine.handle_dtmf("keys", key)
    turn = engine.handle_dtmf("keys", "0")  # an agent, please
    state = engine.state_of("keys")
    assert state is not None and turn.handoff is not None
    stored = state.to_json() + str(turn.handoff.to_dict())
    assert card not in stored and card[-8:] not in stored
    # Redacted as soon as the run looks like a number to hide (ten digits: a phone), the rest of it with it.
    assert [t.dtmf for t in state.transcript if t.role == "user"] == ["[phone]#0"]
    assert [t["dtmf"] for t in turn.handoff.transcript if t["role"] == "user"] == ["[phone]#0"]
    engine.handle_text("keys", "hello")
    engine.handle_dtmf("keys", "5")  # words end a run: the next keys are a line of their own
    later = engine.state_of("keys")
    assert later is not None and [t.dtmf for t in later.transcript if t.role == "user"][-2:] == [None, "5"]


def test_a_turn_another_brain_answered_is_kept_like_our_own(engine: DialogueEngine) -> None:
    """`handle_remote_turn` (the voice calls of the Rasa brain): the transcript, slots, handoff and hang-up."""
    from bot.dialogue import RemoteTurn

    engine.start("r", "+15550100", "voice")
    turn = engine.handle_remote_turn("r", "where is order 48215", RemoteTurn(
        {"name": "check_order_status", "confidence": 0.97}, ({"entity": "order_number", "value": "48215"},),
        ("Order 48215 has shipped.",), {"order_number": "48215", "unknown_slot": 1}, ("action_check_order_status",)))
    assert turn.messages == ("Order 48215 has shipped.",) and turn.debug.slots == {"order_number": "48215"}
    assert turn.actions == ("action_check_order_status",) and not turn.hangup and turn.handoff is None
    human = engine.handle_remote_turn("r", "a person please", RemoteTurn(
        {"name": "talk_to_human", "confidence": 0.99}, messages=("Connecting you.",), handoff_reason="caller_asked"))
    assert human.handoff is not None and human.handoff.reason == "caller_asked"
    assert [t["text"] for t in human.handoff.transcript if t["role"] == "user"] == [
        "where is order 48215", "a person please"]
    engine.start("s", None, "voice")
    bye = engine.handle_remote_turn("s", "bye", RemoteTurn({"name": "goodbye", "confidence": 0.99},
                                                             messages=("Goodbye!",), hangup=True))
    assert bye.hangup and bye.debug.mode == "ended"


def test_two_turns_another_brain_did_not_understand_open_the_menus_on_a_call(engine: DialogueEngine) -> None:
    from bot.dialogue import RemoteTurn

    engine.start("f", None, "voice")
    lost = RemoteTurn({"name": "nlu_fallback", "confidence": 0.3}, messages=("Sorry?",))
    assert engine.handle_remote_turn("f", "mumble", lost).messages == ("Sorry?",)
    second = engine.handle_remote_turn("f", "mumble mumble", lost)
    assert second.ivr_active and "Sorry?" not in second.messages
