"""Resolve the dates callers say (`tomorrow`, `next monday`, `june 3rd`) against a given today."""

from __future__ import annotations

import re
from datetime import date, timedelta

from bot.language import chinese_to_digits, han_count

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
    if han_count(text):
        return _chinese_date(chinese_to_digits(text), today)
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


_ZH_RELATIVE = {"今天": 0, "今晚": 0, "明天": 1, "明儿": 1, "后天": 2, "大后天": 3}
_ZH_WEEKDAY = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "末": 5}
_ZH_WEEK = re.compile(r"(下下|下个?|这个?|本)?(?:周|星期|礼拜)([一二三四五六日天末1-6])")
_ZH_MONTH_DAY = re.compile(r"(?:(\d{4})年)?(\d{1,2})月(\d{1,2})[日号]")
_ZH_DAY = re.compile(r"(?<![月\d])(\d{1,2})[日号]")


def _chinese_date(text: str, today: date) -> date | None:
    """明天, 大后天, 下周三, 这周五, 周末, 十二月五号 (numerals already digits: 12月5号), 15号."""
    for word, days in sorted(_ZH_RELATIVE.items(), key=lambda kv: -len(kv[0])):
        if word in text:
            return today + timedelta(days=days)
    week = _ZH_WEEK.search(text)
    if week:
        prefix, day = week.group(1) or "", week.group(2)
        weekday = int(day) - 1 if day.isdigit() else _ZH_WEEKDAY[day]
        monday = today - timedelta(days=today.weekday())
        weeks = 2 if prefix == "下下" else 1 if prefix.startswith("下") else 0
        in_week = monday + timedelta(days=7 * weeks + weekday)
        return in_week if in_week > today or weeks else in_week + timedelta(days=7)
    if "下周" in text or "下个星期" in text:
        return today + timedelta(days=7 - today.weekday())
    named = _ZH_MONTH_DAY.search(text)
    if named:
        year = int(named.group(1)) if named.group(1) else today.year
        day = _safe_date(year, int(named.group(2)), int(named.group(3)))
        if day is not None and day < today and not named.group(1):
            day = _safe_date(year + 1, int(named.group(2)), int(named.group(3)))
        return day
    day_only = _ZH_DAY.search(text)
    return _month_day([day_only.group(1)], today) if day_only else None


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None
