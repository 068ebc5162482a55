"""Resolve the dates callers say (`tomorrow`, `next monday`, `june 3rd`) against a given today."""

from __future__ import annotations

import re
from datetime import date, timedelta

WEEKDAYS = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)
MONTHS = (
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
)  # fmt: skip
_ORDINAL_WORDS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13,
    "fourteenth": 14, "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18,
    "nineteenth": 19, "twentieth": 20, "thirtieth": 30,
}  # fmt: skip
_FILLERS = {"the", "on", "of", "this", "coming", "for", "at", "in"}


def parse_spoken_date(text: str, today: date) -> date | None:
    """The calendar day meant by `text`, or None if it is not a date this parser knows."""
    words = [w for w in re.findall(r"[a-z]+|\d+", text.lower()) if w not in _FILLERS]
    phrase = " ".join(words)
    iso = re.search(r"\d{4}-\d{2}-\d{2}", text)
    if iso:
        return _safe_date(*(int(part) for part in iso.group(0).split("-")))
    relative = {"today": 0, "tonight": 0, "tomorrow": 1, "day after tomorrow": 2}
    if phrase in relative:
        return today + timedelta(days=relative[phrase])
    if phrase in ("weekend", "next weekend"):
        return _next_weekday(today, 5, skip_this_week=phrase.startswith("next"))
    if phrase == "next week":
        return today + timedelta(days=7 - today.weekday())
    if len(words) in (1, 2) and words[-1] in WEEKDAYS and words[0] in (words[-1], "next"):
        return _next_weekday(today, WEEKDAYS.index(words[-1]), skip_this_week=len(words) == 2)
    return _month_day(words, today)


def _next_weekday(today: date, weekday: int, *, skip_this_week: bool) -> date:
    """First such weekday after today; with `skip_this_week` ("next friday") never this week."""
    ahead = (weekday - today.weekday() - 1) % 7 + 1
    found = today + timedelta(days=ahead)
    if skip_this_week and found.isocalendar()[:2] == today.isocalendar()[:2]:
        found += timedelta(days=7)
    return found


def _day_number(words: list[str]) -> int | None:
    """`3rd`, `3`, `third`, `twenty first` -> the day of the month."""
    joined = " ".join(words)
    digits = re.fullmatch(r"(\d{1,2})(st|nd|rd|th)?", joined.replace(" ", ""))
    if digits:
        return int(digits.group(1))
    if joined in _ORDINAL_WORDS:
        return _ORDINAL_WORDS[joined]
    if len(words) == 2 and words[0] in ("twenty", "thirty") and words[1] in _ORDINAL_WORDS:
        return (20 if words[0] == "twenty" else 30) + _ORDINAL_WORDS[words[1]]
    return None


def _month_day(words: list[str], today: date) -> date | None:
    """`june 3rd`, `3rd june`, `the 14th` (this month, or next month if past)."""
    months = [i for i, w in enumerate(words) if w in MONTHS]
    if len(months) > 1:
        return None
    if not months:
        day = _day_number(words)
        if day is None:
            return None
        found = _safe_date(today.year, today.month, day)
        if found is not None and found >= today:
            return found
        year, month = (today.year + 1, 1) if today.month == 12 else (today.year, today.month + 1)
        return _safe_date(year, month, day)
    index = months[0]
    rest = words[:index] + words[index + 1 :]
    day = _day_number(rest)
    if day is None:
        return None
    month = MONTHS.index(words[index]) + 1
    found = _safe_date(today.year, month, day)
    if found is not None and found < today:
        found = _safe_date(today.year + 1, month, day)
    return found


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None
