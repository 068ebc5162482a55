"""The NLU is called from the dialogue's worker threads at once (every live call's turn): parses made at once
equal parses made one by one. A soak found the entity tagger (pycrfsuite) shared between threads failing with
'The position, 4 is out of range of 4' and mixing up two callers' entities."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

from bot.nlu import NLUEngine

TEXTS = [
    "where is my order 48215", "I want to cancel order 45120 please", "is there a store near Boston",
    "my dishwasher is leaking water all over the kitchen floor", "repair R104233 status please",
    "send the invoice for order 43561 to my email", "I forgot the password for my online account",
    "can somebody install my new fridge next tuesday", "what are your opening hours", "yes",
]


def _entities(result: dict[str, object]) -> list[tuple[str, str]]:
    return [(str(e["entity"]), str(e["value"])) for e in result["entities"]]  # type: ignore[attr-defined]


def test_parses_from_many_threads_equal_parses_one_by_one(nlu_engine: NLUEngine) -> None:
    texts = TEXTS * 30
    alone = {text: (nlu_engine.parse(text)["intent"]["name"], _entities(nlu_engine.parse(text)))  # type: ignore[index]
             for text in TEXTS}
    switching = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # threads take turns often, as in the server (voice: GIL_SWITCH_INTERVAL_S)
    try:
        with ThreadPoolExecutor(8) as pool:
            together = list(pool.map(nlu_engine.parse, texts))
    finally:
        sys.setswitchinterval(switching)
    for text, result in zip(texts, together, strict=True):
        assert (result["intent"]["name"], _entities(result)) == alone[text], text  # type: ignore[index]
