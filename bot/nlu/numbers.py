"""Spoken-number normalisation: "four eight two one three" -> "48213", with offsets kept.

Callers read order numbers digit by digit ("four oh two one five", "double four"),
or as compound numbers ("forty eight thousand two hundred fifteen"). ASR writes
them as words; extractors want digits. `normalise_numbers` rewrites such runs and
keeps a map so entity offsets found in the rewritten text point back into the
caller's original text.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

from text_to_num import text2num

from bot.language.numerals import chinese_number_spans

DIGIT_WORDS = {
    "zero": "0", "oh": "0", "o": "0", "nought": "0",
    "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9",
}  # fmt: skip
REPEATERS = {"double": 2, "triple": 3}
COMPOUND_WORDS = {
    "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
    "eighteen", "nineteen", "twenty", "thirty", "forty", "fifty", "sixty", "seventy",
    "eighty", "ninety", "hundred", "thousand", "million",
}  # fmt: skip
# Runs shorter than this stay words: "one fridge and two ovens" is not a number.
MIN_DIGIT_RUN = 3
_TOKEN = re.compile(r"[A-Za-z]+|\d+")


@dataclass(frozen=True)
class Rewrite:
    """One rewritten span: original [start, end) became normalised [norm_start, norm_end)."""

    start: int
    end: int
    norm_start: int
    norm_end: int
    digits: str


@dataclass(frozen=True)
class NormalisedText:
    original: str
    text: str
    rewrites: tuple[Rewrite, ...]

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """Map a span of the normalised text back to the original text."""
        return self._map(start, is_end=False), self._map(end, is_end=True)

    def from_original(self, start: int, end: int) -> tuple[int, int]:
        """Map a span of the original text to the normalised text."""
        return self._unmap(start, is_end=False), self._unmap(end, is_end=True)

    def _unmap(self, pos: int, *, is_end: bool) -> int:
        shift = 0
        for rw in self.rewrites:
            if pos < rw.start or (is_end and pos == rw.start):
                break
            if pos < rw.end or (is_end and pos == rw.end):
                return rw.norm_end if is_end else rw.norm_start
            shift = rw.norm_end - rw.end
        return pos + shift

    def _map(self, pos: int, *, is_end: bool) -> int:
        shift = 0
        for rw in self.rewrites:
            if pos < rw.norm_start or (is_end and pos == rw.norm_start):
                break
            if pos < rw.norm_end or (is_end and pos == rw.norm_end):
                return rw.end if is_end else rw.start
            shift = rw.end - rw.norm_end
        return pos + shift


def _digit_of(token: str) -> str | None:
    low = token.lower()
    if low in DIGIT_WORDS:
        return DIGIT_WORDS[low]
    if token.isdigit() and len(token) == 1:
        return token
    return None


def _digit_runs(tokens: list[re.Match[str]]) -> list[tuple[int, int, str]]:
    """Find runs of spoken single digits: (first token, last token, digits)."""
    runs: list[tuple[int, int, str]] = []
    i = 0
    while i < len(tokens):
        digits, j = "", i
        while j < len(tokens):
            word = tokens[j].group().lower()
            if word in REPEATERS and j + 1 < len(tokens) and _digit_of(tokens[j + 1].group()):
                digits += _digit_of(tokens[j + 1].group()) * REPEATERS[word]  # type: ignore[operator]
                j += 2
                continue
            digit = _digit_of(tokens[j].group())
            # "o"/"oh" only counts inside a run of digits, never to start one.
            if digit is None or (not digits and word in ("o", "oh")):
                break
            digits += digit
            j += 1
        if len(digits) >= MIN_DIGIT_RUN and j - i >= 2:
            runs.append((i, j - 1, digits))
            i = j
        else:
            i += 1
    return runs


def _compound_runs(tokens: list[re.Match[str]], taken: set[int]) -> list[tuple[int, int, str]]:
    """Find compound number phrases ("forty eight thousand two hundred fifteen")."""
    runs: list[tuple[int, int, str]] = []
    i = 0
    while i < len(tokens):
        if i in taken or tokens[i].group().lower() not in COMPOUND_WORDS | set(DIGIT_WORDS) - {"o", "oh"}:
            i += 1
            continue
        j = i
        while j < len(tokens) and j not in taken and (
            tokens[j].group().lower() in COMPOUND_WORDS | set(DIGIT_WORDS) - {"o", "oh"}
            or tokens[j].group().lower() == "and"
        ):
            j += 1
        while j > i and tokens[j - 1].group().lower() == "and":
            j -= 1
        words = [t.group().lower() for t in tokens[i:j] if t.group().lower() != "and"]
        if any(w in COMPOUND_WORDS for w in words):
            with contextlib.suppress(ValueError):  # "hundred thousand one" and other non-numbers
                runs.append((i, j - 1, str(text2num(" ".join(words), "en"))))
        i = max(j, i + 1)
    return runs


def normalise_numbers(text: str) -> NormalisedText:
    """Rewrite spoken digit runs and compound numbers in `text` as digits (English words and Chinese numerals)."""
    tokens = list(_TOKEN.finditer(text))
    runs = _digit_runs(tokens)
    taken = {k for a, b, _ in runs for k in range(a, b + 1)}
    runs = sorted(runs + _compound_runs(tokens, taken))
    spans = chinese_number_spans(text)
    spans += [(tokens[a].start(), tokens[b].end(), digits) for a, b, digits in runs
              if not any(s < tokens[b].end() and tokens[a].start() < e for s, e, _ in spans)]
    out: list[str] = []
    rewrites: list[Rewrite] = []
    pos = 0
    norm_len = 0
    for start, end, digits in sorted(spans):
        out.append(text[pos:start])
        norm_len += start - pos
        out.append(digits)
        rewrites.append(Rewrite(start, end, norm_len, norm_len + len(digits), digits))
        norm_len += len(digits)
        pos = end
    out.append(text[pos:])
    return NormalisedText(text, "".join(out), tuple(rewrites))


def spoken_to_digits(value: str) -> str:
    """Normalise a whole value: "four eight two one five" -> "48215", "R one 0 4..." kept as is."""
    return normalise_numbers(value).text
