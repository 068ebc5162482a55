"""Has the caller finished speaking? A verdict on the partial transcript at a pause, so the voice can end a whole
request sooner and wait longer for "my order number is ... four eight".

The recogniser decodes 200 ms into every pause; `judge_turn_end` reads those words (and the NLU's parse of them)
and says how the turn looks. The voice pipeline turns the verdict into the end-of-turn silence for this turn
(`EndpointConfig.complete_silence_ms` ...). Rules, in order (the first that applies wins):

| what the words end with                                  | verdict      | e.g.                                   |
|----------------------------------------------------------|--------------|----------------------------------------|
| nothing heard                                            | UNSURE       |                                        |
| a trailing-off mark (..., comma, dash)                   | INCOMPLETE   | "my order number is..."                |
| a word that needs more (and, is, my, to, the, um ...)    | INCOMPLETE   | "I want to change the"                 |
| Chinese that needs more (是, 和, 还有, 就是, 那个 ...)     | INCOMPLETE   | "我的订单号是"                          |
| part of an identifier the bot reads (fewer digits)       | INCOMPLETE   | "order four eight two"                 |
| a noun an identifier often follows (order, number ...)   | MAY_CONTINUE | "where is my order"                    |
| a whole identifier                                       | COMPLETE     | "it's four eight two one five"         |
| a confident intent (not out of scope, not a fallback)    | COMPLETE     | "what are your opening hours"          |
| anything else                                            | UNSURE       | "blah blah"                            |
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from bot.dialogue.validation import REPEATERS, spoken_digits
from bot.language.numerals import chinese_to_digits

log = logging.getLogger(__name__)


class TurnEnd(enum.Enum):
    """How the caller's words so far look."""

    COMPLETE = "complete"  # a whole request: end the turn soon
    MAY_CONTINUE = "may_continue"  # whole, but an identifier often follows ("where is my order")
    INCOMPLETE = "incomplete"  # stopped mid-phrase: wait longer
    UNSURE = "unsure"  # the usual end-of-turn silence


CONFIDENT_INTENT = 0.75
NOT_A_REQUEST = frozenset({"out_of_scope", "nlu_fallback"})
NEEDS_MORE = frozenset({
    "and", "or", "but", "because", "if", "when", "than", "as", "like", "the", "a", "an", "my", "your", "our",
    "their", "its", "i", "i'm", "it's", "we", "to", "for", "of", "with", "at", "from", "about", "into", "by",
    "um", "uh", "er", "erm", "uhm", "hmm", "mm",
})  # fmt: skip
COPULAS = frozenset({"is", "are", "was", "were", "am"})  # "my number is ..." (but "yes it is" is an answer)
ANSWER_WORDS = frozenset({"yes", "yeah", "yep", "no", "nope", "sure", "correct", "right"})
# "for my account" and "send me the invoice" are whole; "where is my order" is often followed by its number
IDENTIFIER_NOUNS = frozenset({"order", "number", "repair", "reference", "ticket", "postcode", "zip"})
ZH_NEEDS_MORE = ("是", "和", "跟", "还有", "然后", "就是", "那个", "这个", "因为", "所以", "但是", "我想", "我要",
                 "请问", "我的", "嗯", "呃", "号码", "订单号", "单号")
ZH_ANSWERS = frozenset({"是", "是的", "对", "对的", "好", "好的", "就是", "嗯", "不是", "不对"})
ZH_IDENTIFIER_NOUNS = ("订单", "维修单", "账户", "账号", "发票")
TRAILING_OFF = ("...", "…", ",", "，", "、", "-", "—")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_TOKEN = re.compile(r"[a-z']+|\d+")  # on lower-cased text


def _trailing_digits(text: str) -> tuple[str, str]:
    """The digits the words end with ("... R one oh four" -> ("r", "104")); ("", "") if they end otherwise."""
    tokens = _TOKEN.findall((chinese_to_digits(text) if _CJK.search(text) else text).lower())
    start = len(tokens)
    while start > 0 and (tokens[start - 1] in REPEATERS or spoken_digits(tokens[start - 1])):
        start -= 1
    if start == len(tokens) or tokens[-1] in REPEATERS:
        return "", ""
    letter = tokens[start - 1] if start > 0 and len(tokens[start - 1]) == 1 else ""
    return letter, spoken_digits(" ".join(tokens[start:]))


def _trailing_identifier(text: str, id_patterns: tuple[re.Pattern[str], ...]) -> TurnEnd | None:
    """The words end in digits: a whole identifier (COMPLETE), the start of one (INCOMPLETE), or neither."""
    letter, digits = _trailing_digits(text)
    if not digits:
        return None
    candidates = (f"{letter.upper()}{digits}", digits)
    if any(pattern.search(f" {candidate} ") for pattern in id_patterns for candidate in candidates):
        return TurnEnd.COMPLETE
    for extra in range(1, 8):  # could more digits make it one?
        longer = (f"{letter.upper()}{digits}{'0' * extra}", f"{digits}{'0' * extra}")
        if any(pattern.search(f" {candidate} ") for pattern in id_patterns for candidate in longer):
            return TurnEnd.INCOMPLETE
    return None


def judge_turn_end(text: str, parse: Callable[[], Mapping[str, Any]] | None = None, *,
                   id_patterns: Iterable[re.Pattern[str]] = ()) -> TurnEnd:
    """The verdict on the caller's words so far; `parse` (the NLU's parse of them) is asked only when the words
    alone do not decide."""
    words = text.strip()
    if not words:
        return TurnEnd.UNSURE
    if words.endswith(TRAILING_OFF):
        return TurnEnd.INCOMPLETE
    bare = words.rstrip(" .?!。？！")
    if _CJK.search(bare) and bare.endswith(ZH_NEEDS_MORE) and bare not in ZH_ANSWERS:
        return TurnEnd.INCOMPLETE
    tokens = _TOKEN.findall(bare.lower())
    latin_end = bool(tokens) and not _CJK.search(bare[-1:])
    if latin_end and (tokens[-1] in NEEDS_MORE or (tokens[-1] in COPULAS and tokens[0] not in ANSWER_WORDS)):
        return TurnEnd.INCOMPLETE
    identifier = _trailing_identifier(bare, tuple(id_patterns))
    if identifier is not None:
        return identifier
    if (latin_end and tokens[-1] in IDENTIFIER_NOUNS) or bare.endswith(ZH_IDENTIFIER_NOUNS):
        return TurnEnd.MAY_CONTINUE
    intent = (parse() if parse is not None else {}).get("intent") or {}
    name, confidence = intent.get("name"), float(intent.get("confidence") or 0.0)
    if name and name not in NOT_A_REQUEST and confidence >= CONFIDENT_INTENT:
        return TurnEnd.COMPLETE
    return TurnEnd.UNSURE


class _Parser(Protocol):
    def parse(self, text: str) -> dict[str, Any]: ...


class TurnEndJudge:
    """`judge_turn_end` over a live NLU model (thread-safe as the model is: called from the ASR threads)."""

    def __init__(self, interpreter: _Parser, id_patterns: Iterable[str],
                 repair: Callable[[str], str] | None = None) -> None:
        self.interpreter = interpreter
        self.id_patterns = tuple(re.compile(pattern) for pattern in id_patterns)
        self.repair = repair or (lambda text: text)

    def __call__(self, text: str) -> TurnEnd:
        """The verdict on a partial transcript (repaired as the NLU would see it); UNSURE if anything fails."""
        try:
            words = self.repair(text)
            return judge_turn_end(words, lambda: self.interpreter.parse(words), id_patterns=self.id_patterns)
        except Exception:  # the end of a turn never fails: the usual silence decides
            log.exception("judging the end of turn failed on %r", text[:80])
            return TurnEnd.UNSURE
