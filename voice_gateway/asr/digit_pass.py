"""A second look at utterances that hold a number: Whisper decoded again, primed to write digits.

Callers read order, repair and phone numbers digit by digit, and a small Whisper writes what it half-heard as
words ("for 8 to 1 time" for "four eight two one five"). Decoding the same encoded audio again after a previous-
text prompt that reads digits one by one ("My order number is 3 9 0 6 7.") makes it write the digits it hears,
one by one, which also keeps repeated digits apart ("4364699" for "four three six four six nine",
"4 36 4 6 9" primed; `bench/digits_benchmark.py`). The prompt on every utterance is worse: it makes Whisper
repeat short answers ("Yes yes yes") and hear digits in questions without any, so the second pass runs only
when the first pass already heard two or more digits, costs only the decoder (the encoder's output is reused),
and its text is taken unless it heard the same numerals as the first pass, parrots the prompt, says the
sentence twice or stops short.
"""

from __future__ import annotations

import re

# Digits in the prompt that no benchmark script or test uses, so a copied prompt is recognisable.
DIGIT_PROMPT = "My order number is 3 9 0 6 7."
_PROMPT_DIGITS = re.compile(r"3\D{0,2}9\D{0,2}0\D{0,2}6\D{0,2}7")
_WORDS = frozenset({"zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"})
_TOKEN = re.compile(r"\d|[a-z]+")


def digit_count(text: str) -> int:
    """Digits heard, as numerals (each counts) or English digit words."""
    return sum(1 for token in _TOKEN.findall(text.lower()) if token.isdigit() or token in _WORDS)


def wants_digit_pass(text: str, language: str | None) -> bool:
    """An English utterance in which the first pass heard at least two digits."""
    return language in (None, "en") and digit_count(text) >= 2


def _other_words(text: str) -> int:
    return sum(1 for token in _TOKEN.findall(text.lower()) if not token.isdigit() and token not in _WORDS)


_ONE_DIGIT_REPEATED = re.compile(r"^\W*(\d)(?:\W+\1)+\W*$")


def looped_digit(text: str) -> bool:
    """One digit over and over ("3 3 3", "9 9"): what Whisper writes for one isolated digit on a short window
    more often than not (it loops on the silence after the word); the 30 s window hears "3" there, and keeps
    "9 9" when the caller said "nine nine" (`bench/asr_benchmark.py`, FSDD)."""
    return _ONE_DIGIT_REPEATED.match(text) is not None


def primed_is_better(first: str, second: str) -> bool:
    """Take the digit-primed text unless it heard the same numerals as the first pass (whose writing is kept:
    "41,877" rather than "41 877"), parrots the prompt's digits, says the sentence twice ("Where's my order
    48215? Where's my order 48215?": no more other words than the first pass had, give or take one) or stops
    short (two or more digits fewer than the first pass heard: "1" for "repair 1, 4, 3, 9, 1, 3")."""
    return (re.sub(r"\D", "", second) != re.sub(r"\D", "", first) and not _PROMPT_DIGITS.search(second)
            and _other_words(second) <= _other_words(first) + 1 and digit_count(second) >= digit_count(first) - 1)
