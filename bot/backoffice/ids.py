"""Turn what a caller said (as an ASR wrote it) into canonical ids, phones and emails."""

from __future__ import annotations

import re

_UNITS = {
    "zero": 0, "oh": 0, "o": 0, "one": 1, "two": 2, "three": 3, "four": 4,
    "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
}  # fmt: skip
_TEENS = {
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
_TENS = {
    "twenty": 2, "thirty": 3, "forty": 4, "fifty": 5,
    "sixty": 6, "seventy": 7, "eighty": 8, "ninety": 9,
}  # fmt: skip
_REPEATS = {"double": 2, "triple": 3}
_TOKEN = re.compile(r"[a-z]+|\d+")
_ORDER_NUMBER = re.compile(r"4\d{4,7}")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def spoken_digits(text: str) -> str | None:
    """Digits spelled out or written in groups (`four eight 2 15`, `double oh`) -> `48215`."""
    tokens = _TOKEN.findall(text.lower())
    out: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        following = tokens[i + 1] if i + 1 < len(tokens) else ""
        if token.isdigit():
            out.append(token)
        elif token in _REPEATS and following in _UNITS:
            out.append(str(_UNITS[following]) * _REPEATS[token])
            i += 1
        elif token in _UNITS:
            out.append(str(_UNITS[token]))
        elif token in _TEENS:
            out.append(str(_TEENS[token]))
        elif token in _TENS:
            # "forty eight" is 48; "forty" alone is 40.
            if following in _UNITS and _UNITS[following] > 0:
                out.append(f"{_TENS[token]}{_UNITS[following]}")
                i += 1
            else:
                out.append(f"{_TENS[token]}0")
        else:
            return None
        i += 1
    return "".join(out) or None


def normalize_order_number(text: str) -> str | None:
    """`order four eight two one five` / `48 215` -> `48215`; None if not an order number."""
    cleaned = re.sub(r"^(?:(?:my|the|order|number|no|nr|is)\b[\s.:#]*)+", "", text.strip().lower())
    digits = spoken_digits(cleaned.replace("#", " "))
    return digits if digits and _ORDER_NUMBER.fullmatch(digits) else None


def normalize_repair_number(text: str) -> str | None:
    """`R104233` / `r one zero four two three three` / `are 104 233` -> `R104233`."""
    lowered = text.strip().lower()
    match = re.fullmatch(r"r\s*(\d{6})", lowered)
    if match:
        return f"R{match.group(1)}"
    head = re.match(r"(r|are|our)\b\s*", lowered)
    if head is None:
        return None
    digits = spoken_digits(lowered[head.end() :])
    return f"R{digits}" if digits and len(digits) == 6 else None


def normalize_phone(text: str) -> str | None:
    """A North American number in any written or spoken form -> E.164 (`+16175550142`)."""
    lowered = text.strip().lower().replace("plus", " ")
    digits = spoken_digits(re.sub(r"[+().-]", " ", lowered))
    if digits is None:
        return None
    if len(digits) == 10:
        return f"+1{digits}"
    if len(digits) == 11 and digits.startswith("1"):
        return f"+{digits}"
    return None


def normalize_email(text: str) -> str | None:
    """`anna dot berg at gmail dot com` or a written address -> `anna.berg@gmail.com`."""
    spoken = f" {text.strip().lower()} "
    for word, symbol in (
        (" dot ", "."),
        (" at ", "@"),
        (" underscore ", "_"),
        (" dash ", "-"),
    ):
        spoken = spoken.replace(word, f" {symbol} ")
    candidate = re.sub(r"\s+", "", spoken)
    return candidate if _EMAIL.fullmatch(candidate) else None
