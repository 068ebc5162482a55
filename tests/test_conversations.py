"""Every conversation in tests/conversations/*.yml, against the real NLU and demo data."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.dialogue.conversation_tests import Clock, run_conversation_file
from bot.dialogue.engine import DialogueEngine, Interpreter
from bot.dialogue.factory import build_engine
from bot.dialogue.settings import DialogueSettings
from bot.dialogue.state import ConversationState

ROOT = Path(__file__).resolve().parent.parent
CONVERSATIONS = sorted((ROOT / "tests" / "conversations").glob("*.yml"))


def engine_factory(interpreter: Interpreter) -> object:
    def make(now: Clock) -> DialogueEngine:
        return build_engine(ROOT / "nlu_data", interpreter,
                            settings=DialogueSettings(raise_errors=True), now=now)

    return make


def test_there_are_enough_conversations() -> None:
    assert len(CONVERSATIONS) >= 100


@pytest.mark.parametrize("path", CONVERSATIONS, ids=[p.stem for p in CONVERSATIONS])
def test_conversation(path: Path, nlu_engine: Interpreter) -> None:
    result = run_conversation_file(path, engine_factory(nlu_engine))  # type: ignore[arg-type]
    assert result.passed, result.report()


BAD_INPUTS = ["", "x" * 10_000, "🙂" * 50, "¿Dónde está mi pedido?", "我的order在哪里🙂🙂", "訂單４８２１５呢？",
              "ｗｈｅｒｅ ｉｓ ｍｙ ｏｒｄｅｒ", "喂" * 600, "😀订单😀",
              "\x00\x07\x1b[31m", "12345678901234567890", "four", "R", "@@@@", "\u202e\ufeff",
              "where is my order " * 200, "{order_number} {email}"]


@pytest.mark.parametrize("text", BAD_INPUTS, ids=range(len(BAD_INPUTS)))
def test_bad_input_with_the_real_nlu(text: str, nlu_engine: Interpreter) -> None:
    engine = build_engine(ROOT / "nlu_data", nlu_engine,
                          settings=DialogueSettings(raise_errors=True), now=lambda: 1.75e9)
    engine.start("bad", "+15550100", "voice")
    for _ in range(3):  # also as the reply to a form question, and repeatedly
        turn = engine.handle_text("bad", text)
        assert turn.messages, turn
        assert all(m.strip() and "{" not in m for m in turn.messages)
        state = engine.state_of("bad")
        assert state is not None
        assert ConversationState.from_json(state.to_json()) == state
        engine.handle_text("bad", "where is my order")
