"""Slot validators: turn what a caller said into a clean slot value, or reject it."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from bot.backoffice.dates import parse_spoken_date
from bot.language import chinese_to_digits, han_count

Validator = Callable[[Any, date], Any]

_DIGIT_WORDS = {
    "zero": "0", "oh": "0", "o": "0", "nought": "0", "one": "1", "two": "2", "to": "2",
    "too": "2", "three": "3", "four": "4", "for": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "niner": "9",
}
REPEATERS = {"double": 2, "triple": 3}
_FILLERS = {"it's", "its", "it", "is", "the", "number", "my", "order", "repair", "uh", "um",
            "no", "yes", "yeah", "sorry", "it'll", "be", "er", "and", "dash", "hyphen", "ok",
            "okay", "actually", "i", "mean", "said", "that's", "was", "ticket", "reference"}
_MONTHS = {m: i + 1 for i, m in enumerate(
    ["january", "february", "march", "april", "may", "june", "july", "august", "september",
     "october", "november", "december"])}
_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")


def spoken_digits(text: str) -> str:
    """All digits in `text`, reading number words ("four oh two", "double five") too."""
    out: list[str] = []
    repeat = 1
    for token in re.findall(r"[a-z']+|\d+", text.lower()):
        if token in REPEATERS:
            repeat = REPEATERS[token]
            continue
        if token.isdigit():
            out.append(token[0] * (repeat - 1) + token)
        elif token in _DIGIT_WORDS:
            out.append(_DIGIT_WORDS[token] * repeat)
        repeat = 1
    return "".join(out)


def _only_digit_talk(text: str) -> bool:
    """True if every word is a digit, a digit word, or filler (so digits were meant)."""
    tokens = re.findall(r"[a-z']+|\d+", text.lower())
    return all(
        t.isdigit() or t in _DIGIT_WORDS or t in REPEATERS or t in _FILLERS or t == "r"
        for t in tokens
    )


def validate_order_number(value: Any, today: date) -> str | None:
    """Order numbers are 5-8 digits."""
    text = chinese_to_digits(str(value))
    digits = re.sub(r"\D", "", text) if re.search(r"\d", text) else spoken_digits(text)
    if re.search(r"[a-z]", text.lower()) and not _only_digit_talk(text):
        runs = [re.sub(r"\D", "", r) for r in re.findall(r"\d[\d\s-]*\d|\d", text)]
        digits = max(runs, key=len, default="")
    return digits if 5 <= len(digits) <= 8 else None


def validate_repair_number(value: Any, today: date) -> str | None:
    """Repair numbers are R followed by six digits (callers may drop or spell the R)."""
    text = chinese_to_digits(str(value)).strip().lower()
    text = re.sub(r"^(?:are|ar|r)\b[\s-]*|^r(?=\d)", "", text)
    digits = spoken_digits(text) if _only_digit_talk(text) else "".join(re.findall(r"\d", text))
    return f"R{digits}" if len(digits) == 6 else None


def validate_email(value: Any, today: date) -> str | None:
    """An email address; spoken forms like "jo at example dot com" are accepted."""
    text = str(value).strip().lower()
    text = re.sub(r"\s+at\s+", "@", text)
    text = re.sub(r"\s+dot\s+", ".", text)
    text = text.replace(" ", "").rstrip(".")
    return text if _EMAIL.match(text) else None


def validate_phone(value: Any, today: date) -> str | None:
    """A phone number: 7-15 digits, keeping a leading +."""
    text = chinese_to_digits(str(value)).strip()
    digits = re.sub(r"\D", "", text) or spoken_digits(text)
    if not 7 <= len(digits) <= 15:
        return None
    return ("+" if text.startswith("+") else "") + digits


def validate_date(value: Any, today: date) -> str | None:
    """A date in the future-ish: ISO, d/m/y, `tomorrow`, weekdays, `12 march`, 明天, 下周三, 十二月五号; ISO out."""
    text = str(value).strip().lower()
    if han_count(text):
        day = parse_spoken_date(text, today)
        return day.isoformat() if day is not None else None
    if m := re.search(r"(\d{4})-(\d{1,2})-(\d{1,2})", text):
        return _iso(int(m[1]), int(m[2]), int(m[3]))
    if m := re.search(r"(\d{1,2})[/.](\d{1,2})(?:[/.](\d{2,4}))?", text):
        year = int(m[3]) if m[3] else today.year
        return _iso(year + 2000 if year < 100 else year, int(m[2]), int(m[1]))
    if "today" in text:
        return today.isoformat()
    if "day after tomorrow" in text:
        return (today + timedelta(days=2)).isoformat()
    if "tomorrow" in text:
        return (today + timedelta(days=1)).isoformat()
    for index, name in enumerate(_WEEKDAYS):
        if name in text:
            ahead = (index - today.weekday()) % 7 or 7
            return (today + timedelta(days=ahead)).isoformat()
    for name, month in _MONTHS.items():
        mentioned = name in text or re.search(rf"\b{name[:3]}\b", text)
        if mentioned and (m := re.search(r"(\d{1,2})(?:st|nd|rd|th)?", text)):
            candidate = _iso(today.year, month, int(m[1]))
            if candidate is not None and candidate < today.isoformat():
                candidate = _iso(today.year + 1, month, int(m[1]))
            return candidate
    return None


def _iso(year: int, month: int, day: int) -> str | None:
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        return None


def validate_text(value: Any, today: date) -> str | None:
    """Any non-empty text (trimmed, at most 500 characters)."""
    text = " ".join(str(value).split())
    return text[:500] if text else None


def validate_security_answer(value: Any, today: date) -> str | None:
    """The digits of a postcode or of the phone number's last four ("six zero six zero seven")."""
    text = re.sub(r"\blast\s+(?:four|4)\b(?:\s+digits)?|后四位", " ", chinese_to_digits(str(value)).lower())
    digits = "".join(re.findall(r"\d", text)) if re.search(r"\d", text) else spoken_digits(text)
    return digits if 4 <= len(digits) <= 10 else None


DEFAULT_VALIDATORS: dict[str, Validator] = {
    "order_number": validate_order_number,
    "repair_number": validate_repair_number,
    "email": validate_email,
    "phone": validate_phone,
    "phone_number": validate_phone,
    "date": validate_date,
    "installation_date": validate_date,
    "preferred_date": validate_date,
    "verification_answer": validate_security_answer,
}


def validator_for(slot: str, validators: dict[str, Validator]) -> Validator | None:
    """The validator for a slot: by exact name, else by suffix (`*_email`, `*_date`)."""
    if slot in validators:
        return validators[slot]
    for suffix in ("email", "date", "phone"):
        if slot.endswith("_" + suffix) and suffix in validators:
            return validators[suffix]
    return None
