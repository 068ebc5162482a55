"""The words a TTS engine should say for a bot's text, the same for every engine (pure functions).

Identifiers (order, repair, tracking and phone numbers, postcodes) are read character by character in groups a
caller can write down ("four eight two, one three"); amounts, dates, times, percentages and counts the natural
way ("one thousand one hundred and ninety-nine dollars", "June third", "eight A M"). What is an identifier comes
from the text itself: the NLU data's `*_number` regexes (`id_patterns`), a word such as "order" or "tracking
number" before it, a leading "+", letters joined to digits ("R123456", "BLF-48215"), or a run of 5+ digits.

Each language has a `Reader` (`spoken_en.py`) that says digits, numbers, amounts, dates and times; this module
finds them. Adding a language is one reader and one line in `READERS`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from voice_gateway.tts import spoken_en, spoken_zh


class Reader(Protocol):
    """How one language says what `speakable` finds."""

    language: str
    months: tuple[str, ...]  # January .. December as written in this language's text

    def identifier(self, groups: Sequence[str]) -> str: ...  # ["482", "13"] -> "four eight two, one three"

    def phone(self, groups: Sequence[str]) -> str: ...  # groups after a "+": ["1", "617", ...]

    def cardinal(self, number: int) -> str: ...

    def decimal(self, whole: int, fraction: str) -> str: ...

    def ordinal(self, number: int) -> str: ...

    def money(self, currency: str, units: int, cents: int) -> str: ...  # currency: "$", "£", "€", "¥"

    def percent(self, spoken_number: str) -> str: ...

    def time(self, hour: int, minute: int, half: str | None) -> str: ...  # half: "am", "pm" or None (24 h)

    def date(self, year: int | None, month: int, day: int) -> str: ...


READERS: dict[str, Reader] = {"en": spoken_en.ENGLISH, "zh": spoken_zh.CHINESE}


def languages() -> tuple[str, ...]:
    """The languages `speakable` reads."""
    return tuple(READERS)


# Identifiers.
_ID_WORDS = (r"order|repair|tracking|reference|ref|ticket|invoice|booking|account|confirmation|case|membership"
             r"|customer|serial|pin|code|zip|postcode|post\s+code|extension|ext")
_KEYWORD_ID = re.compile(
    rf"\b(?:{_ID_WORDS})\b(?:\s+(?:number|no\.?|code|id))?(?:\s+(?:is|was))?[\s:#]*"
    r"(?P<id>(?:[A-Za-z]{1,4}-?)?\d[\dA-Za-z-]*\d)\b",
    re.IGNORECASE,
)
_LETTERS_AND_DIGITS = re.compile(r"(?<![A-Za-z0-9_])[A-Z]{1,4}(?:-[A-Z]{1,4})*-?\d{3,}(?:-\d+)*(?![A-Za-z0-9_])")
_POSTCODE_UK = re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s\d[A-Z]{2}\b")
_INTERNATIONAL = re.compile(r"(?<![A-Za-z0-9_+])\+\d[\d\s().-]{5,}\d(?![A-Za-z0-9_])")
_NORTH_AMERICAN = re.compile(r"(?<![\w-])\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}\b")
_LONG_DIGITS = re.compile(r"(?<![\d,.$£€¥])\d{5,}(?!\d|[.,]\d)")
# Amounts, dates, times, counts.
# Boundaries are ASCII (`_NB`, `_NA`): Han characters are word characters to \b, and "订单48215" has an id.
_NB, _NA = r"(?<![A-Za-z0-9_])", r"(?![A-Za-z0-9_])"
_ISO_DATE = re.compile(rf"{_NB}(?P<y>\d{{4}})-(?P<m>\d{{2}})-(?P<d>\d{{2}}){_NA}")
# "p.m." keeps its last dot: it may end the sentence too.
_TIME_12 = re.compile(r"\b(?P<h>1[0-2]|0?\d)(?::(?P<min>[0-5]\d))?\s?(?P<half>[ap])(?:\.m(?=\.)|m\b)", re.IGNORECASE)
_TIME_24 = re.compile(rf"{_NB}(?P<h>[01]?\d|2[0-3]):(?P<min>[0-5]\d){_NA}")
# Chinese clock times and dates in digits: 8点, 8点30分, 12月5日 / 12月5号.
_ZH_TIME = re.compile(r"(?<![\d:])(?P<h>[01]?\d|2[0-3])点(?:(?P<min>[0-5]?\d)分)?")
_ZH_DATE = re.compile(r"(?<!\d)(?:(?P<y>\d{4})年)?(?P<m>1[0-2]|0?[1-9])月(?P<d>[12]\d|3[01]|0?[1-9])[日号]")
_MONEY = re.compile(r"(?P<cur>[$£€¥])\s?(?P<units>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<cents>\d{2}))?(?![\d])")
_PERCENT = re.compile(r"(?<![A-Za-z0-9_.])(?P<n>\d+(?:\.\d+)?)\s?%")
_ORDINAL = re.compile(r"\b(?P<n>\d+)(?:st|nd|rd|th)\b")
_NUMBER = re.compile(r"(?<![A-Za-z0-9_.])(?P<n>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<frac>\d+))?(?![A-Za-z0-9_]|\.\d)")
_SEPARATORS = re.compile(r"[\s().-]+")
_RUNS = re.compile(r"[A-Za-z]+|\d+")


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    words: str


def digit_groups(digits: str) -> list[str]:
    """A run of digits in groups of three, never leaving one digit alone: 48213 -> 482 13, 12345678 -> 1234 5678."""
    if len(digits) <= 4:
        return [digits]
    if len(digits) in (7, 8):
        return [digits[: len(digits) - 4], digits[-4:]]
    return [digits[:3], *digit_groups(digits[3:])]


def identifier_groups(token: str) -> list[str]:
    """The groups an identifier is read in: its own separators first, then letters apart from digits, then
    long digit runs in threes ("BLF-48215" -> BLF 482 15)."""
    groups: list[str] = []
    for part in _SEPARATORS.split(token):
        for run in _RUNS.findall(part):
            groups += digit_groups(run) if run.isdigit() else [run.upper()]
    return groups


def phone_groups(token: str) -> list[str]:
    """A "+" number: its own grouping if written with spaces, else country code (1, or two digits) and the rest."""
    parts = [part for part in _SEPARATORS.split(token.lstrip("+")) if part]
    if len(parts) > 1:
        return [group for part in parts for group in (digit_groups(part) if len(part) > 4 else [part])]
    digits = parts[0]
    country = digits[:1] if digits.startswith(("1", "7")) else digits[:2]
    rest = digits[len(country):]
    national = [rest[:3], rest[3:6], rest[6:]] if len(rest) == 10 else digit_groups(rest)
    return [country, *national]


@lru_cache(maxsize=32)
def _compiled(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(pattern) for pattern in patterns)


Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str], str]  # pattern, spoken form, group it replaces


def _rules(reader: Reader, id_patterns: tuple[str, ...]) -> list[Rule]:
    """The rules in order: the first to match a stretch of text says it."""
    months = rf"(?P<month>{'|'.join(reader.months)})"
    day, year = r"(?P<d>\d{1,2})(?:st|nd|rd|th)?\b", r"(?:,?\s+(?P<y>\d{4})\b)?"
    month_day = re.compile(rf"\b{months}\s+{day}{year}")
    day_month = re.compile(rf"\b{day}\s+(?:of\s+)?{months}\b{year}")

    def ident(m: re.Match[str]) -> str:
        return reader.identifier(identifier_groups(m.group(0)))

    def named_date(m: re.Match[str]) -> str:
        year = int(m.group("y")) if m.group("y") else None
        return reader.date(year, reader.months.index(m.group("month")) + 1, int(m.group("d")))

    def clock(m: re.Match[str]) -> str:
        half = m.groupdict().get("half")
        return reader.time(int(m.group("h")), int(m.group("min") or 0), f"{half.lower()}m" if half else None)

    def number(m: re.Match[str]) -> str:
        whole = int(m.group("n").replace(",", ""))
        return reader.decimal(whole, m.group("frac")) if m.group("frac") else reader.cardinal(whole)

    def percent(m: re.Match[str]) -> str:
        whole, _, fraction = m.group("n").partition(".")
        return reader.percent(reader.decimal(int(whole), fraction) if fraction else reader.cardinal(int(whole)))

    return [
        (_INTERNATIONAL, lambda m: reader.phone(phone_groups(m.group(0))), "0"),
        (_LETTERS_AND_DIGITS, ident, "0"),
        (_POSTCODE_UK, lambda m: reader.identifier(m.group(0).split()), "0"),  # "S W one A, one A A"
        *((pattern, ident, "0") for pattern in _compiled(id_patterns)),
        (_NORTH_AMERICAN, ident, "0"),
        (_KEYWORD_ID, lambda m: reader.identifier(identifier_groups(m.group("id"))), "id"),
        (_LONG_DIGITS, ident, "0"),
        (_ISO_DATE, lambda m: reader.date(int(m.group("y")), int(m.group("m")), int(m.group("d"))), "0"),
        (month_day, named_date, "0"),
        (day_month, named_date, "0"),
        (_ZH_DATE, lambda m: reader.date(int(m.group("y")) if m.group("y") else None, int(m.group("m")),
                                         int(m.group("d"))), "0"),
        (_ZH_TIME, lambda m: reader.time(int(m.group("h")), int(m.group("min") or 0), None), "0"),
        (_TIME_12, clock, "0"),
        (_TIME_24, clock, "0"),
        (_MONEY, lambda m: reader.money(m.group("cur"), int(m.group("units").replace(",", "")),
                                        int(m.group("cents") or 0)), "0"),
        (_PERCENT, percent, "0"),
        (_ORDINAL, lambda m: reader.ordinal(int(m.group("n"))), "0"),
        (_NUMBER, number, "0"),
    ]


def speakable(text: str, *, language: str = "en", id_patterns: Sequence[str] = ()) -> str:
    """`text` with identifiers, amounts, dates, times and numbers written as the words to say in `language`."""
    reader = READERS.get(language)
    if reader is None:
        raise ValueError(f"no spoken-text reader for language {language!r}: choose one of {', '.join(READERS)}")
    spans: list[_Span] = []
    for pattern, say, group in _rules(reader, tuple(id_patterns)):
        for match in pattern.finditer(text):
            start, end = match.span(0 if group == "0" else group)
            if start == end or any(start < s.end and s.start < end for s in spans):
                continue
            if group == "id" and sum(c.isdigit() for c in match.group(group)) < 3:
                continue  # "order 2 items": a count, not an identifier
            spans.append(_Span(start, end, say(match)))
    out, at = [], 0
    for span in sorted(spans, key=lambda s: s.start):
        out += [text[at : span.start], span.words]
        at = span.end
    return "".join([*out, text[at:]])
