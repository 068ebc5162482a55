"""REST webhook, chat loop, conversation-test runner, and bad input never breaking a turn."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.dialogue.actions.registry import ActionContext
from bot.dialogue.channels import as_dtmf, rest_webhook, run_chat
from bot.dialogue.conversation_tests import (
    ConversationFormatError,
    parse_conversation,
    run_conversation,
    run_conversation_file,
)
from bot.dialogue.engine import DialogueEngine
from bot.dialogue.events import Event
from bot.dialogue.state import ConversationState
from tests.dialogue_fixtures import scripted_engine


@pytest.fixture
def engine() -> DialogueEngine:
    return scripted_engine(lambda: 1000.0)


@pytest.mark.parametrize(("message", "keys"), [
    ("1", "1"), (" # ", "#"), ("/dtmf 48215#", "48215#"), ("/DTMF *", "*"), ("12", None),
    ("1 please", None), ("", None),
])
def test_what_counts_as_keys(message: str, keys: str | None) -> None:
    found = as_dtmf(message)
    assert (found.keys if found else None) == keys


def test_rest_webhook_text_and_keys(engine: DialogueEngine) -> None:
    out = rest_webhook(engine, {"sender": "u1", "message": "where is order 48215"})
    assert out == [{"recipient_id": "u1", "text": "Order 48215 has shipped."},
                   {"recipient_id": "u1", "text": "Anything else?"}]
    out = rest_webhook(engine, {"sender": "u2", "message": "0",
                                "metadata": {"caller_number": "+15550100"}})
    assert out[-1]["custom"]["handoff"]["skill"] == "general"


def test_a_forged_sender_gets_no_context_in_the_handoff_reply(engine: DialogueEngine) -> None:
    """Whoever posts with another user's `sender` id must not get that user's transcript or slots back."""
    rest_webhook(engine, {"sender": "victim", "message": "where is order 48215",
                          "metadata": {"caller_number": "+15550100"}})
    out = rest_webhook(engine, {"sender": "victim", "message": "0"})  # the attacker asks for an agent
    handoff = out[-1]["custom"]["handoff"]
    assert set(handoff) == {"skill", "reason", "priority"}
    assert "48215" not in str(out) and "+15550100" not in str(out)


def test_rest_webhook_survives_odd_bodies(engine: DialogueEngine) -> None:
    assert rest_webhook(engine, {}) != []
    assert rest_webhook(engine, {"sender": "x", "message": None})[0]["recipient_id"] == "x"


def test_chat_loop_with_keys_debug_and_hangup(engine: DialogueEngine) -> None:
    lines = iter(["where is my order", "48215", "", "blorp", "blorp", "1", "bye"])
    printed: list[str] = []
    run_chat(engine, lambda prompt: next(lines), printed.append, debug=True)
    text = "\n".join(printed)
    assert "bot> What is your order number?" in text
    assert "form=order_form asking order_number" in text
    assert "Order 48215 has shipped." in text
    assert "intent=check_order_status (0.95)" in text
    assert "Enter your order number then hash." in text  # "1" went into the IVR
    assert "ivr=main" in text


def test_chat_stops_on_end_of_input(engine: DialogueEngine) -> None:
    printed: list[str] = []

    def stop(prompt: str) -> str:
        raise EOFError

    run_chat(engine, stop, printed.append)
    assert printed == ["bot> Hello, how can I help?"]


CONVERSATION = """
name: order with correction then keypad agent
caller: "+15550100"
turns:
  - user: "where is my order"
    bot: ["order number"]
    form: order_form
  - user: "four one eight seven seven"
    slots: {order_number: "41877"}
    bot: ["41877", "processing"]
    action: action_check_order_status
  - user: "no, it's 48215"
    bot: ["shipped"]
  - dtmf: "0"
    handoff: {skill: general}
"""


def test_runner_passes_a_good_conversation() -> None:
    result = run_conversation(parse_conversation(__import__("yaml").safe_load(CONVERSATION)),
                              scripted_engine)
    assert result.passed, result.report()


def test_runner_reports_readable_failures(tmp_path: Path) -> None:
    path = tmp_path / "bad.yml"
    path.write_text(CONVERSATION.replace('"shipped"', '"teleported"').replace(
        "skill: general", "skill: billing"))
    result = run_conversation_file(path, scripted_engine)
    assert not result.passed
    report = result.report()
    assert "FAIL" in report and "turn 3: bot should say 'teleported'" in report
    assert "handoff skill should be 'billing'; it is 'general'" in report
    assert "bot: Order 48215 has shipped." in report  # the transcript is shown


def test_runner_session_expiry_with_wait() -> None:
    spec = parse_conversation({"turns": [
        {"user": "where is my order", "form": "order_form"},
        {"user": "hello", "wait": 3700, "bot": "how can I help", "form": None},
    ]})
    assert run_conversation(spec, scripted_engine).passed


@pytest.mark.parametrize("data", [None, {"turns": "x"}, {"turns": [{"user": "a", "dtmf": "1"}]},
                                  {"turns": [{"usr": "typo"}]}])
def test_bad_conversation_files_are_refused(data: object) -> None:
    with pytest.raises(ConversationFormatError):
        parse_conversation(data)


BAD_INPUTS = ["", "   ", "x" * 10_000, "🙂🙂🔥", "¿Dónde está mi pedido?", "訂單🙂order ４８",
              "\x00\x07\x1b[31mred\x1b[0m", "12345678901234567890", "4", "*#*#", "\u202e\ufeff",
              "{order_number}", "/dtmf", "null", "DROP TABLE orders;"]


@pytest.mark.parametrize("text", BAD_INPUTS)
def test_bad_input_never_breaks_a_turn(engine: DialogueEngine, text: str) -> None:
    engine.start("bad", "+15550100", "voice")
    engine.handle_text("bad", "where is my order")
    turn = engine.handle_text("bad", text)
    assert turn.messages or turn.handoff is not None
    assert all(isinstance(m, str) and m for m in turn.messages)
    assert "{" not in turn.text
    state = engine.state_of("bad")
    assert state is not None
    assert ConversationState.from_json(state.to_json()) == state
    assert all(len(t.text) <= 1000 for t in state.transcript)
    again = engine.handle_dtmf("bad", text)
    assert again.messages or again.handoff is not None


def test_an_nlu_crash_counts_as_not_understood() -> None:
    class Broken:
        def parse(self, text: str) -> dict[str, object]:
            raise RuntimeError("model not loaded")

    engine = scripted_engine(lambda: 1.0)
    engine.interpreter = Broken()
    engine.start("s", None, "rest")
    assert engine.handle_text("s", "hello").messages == ("Sorry, I didn't get that.",)


def test_a_crashing_action_apologises_and_hands_over() -> None:
    def broken(ctx: ActionContext) -> list[Event]:
        raise RuntimeError("database down")

    engine = scripted_engine(lambda: 1.0, raise_errors=False)  # production behaviour
    engine.brain.actions.register("action_check_order_status", broken)
    turn = engine.handle_text("s", "where is order 48215")
    assert "went wrong" in turn.text
    assert turn.handoff is not None and turn.handoff.reason == "action_request"
