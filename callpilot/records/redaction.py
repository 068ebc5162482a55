"""PII redaction for stored transcripts and for log lines.

Redacted: payment card numbers (13-19 digits, spaces or dashes allowed, only when the Luhn check passes; bank
cards too), Chinese resident ID numbers (18 characters with the GB 11643-1999 check character), e-mail addresses
and phone numbers (international `+...`, North American, Chinese mobile with or without +86, Chinese landlines
with their area code), also read out as words ("four one one ...") or in Chinese numerals ("一三八幺二三四...",
幺 for 1), and inside Chinese text ("我的手机号13812345678"). Kept: order numbers (5 digits), repair
numbers (`R` + 6 digits), amounts, dates and any long number that fails its checksum, so agents and
trainers still see what the caller asked about.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import unquote

CARD = "[card]"
CN_ID = "[id]"
EMAIL = "[email]"
PHONE = "[phone]"

_EMAIL = re.compile(r"(?<![A-Za-z0-9_.+-])[A-Za-z0-9_.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_CN_ID = re.compile(r"(?<![\dA-Za-z])\d{17}[\dXx](?![\dA-Za-z])")
# Digits with single spaces or dashes between them; the length and Luhn checks happen in code.
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
# Boundaries are ASCII: a Han character next to a number ("手机号13812345678") is no part of it.
_INTERNATIONAL = re.compile(r"(?<![A-Za-z0-9_+])\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}(?![\d])")  # +86 138 0013 8000
_PHONES = (
    # (617) 555-0142, 617-555-0142, 617.555.0142, 1 617 555 0142, 6175550142
    re.compile(r"(?<![A-Za-z0-9_+-])(?<!\d\.)(?:1[ .-]?)?(?:\(\d{3}\)|\d{3})[ .-]?\d{3}[ .-]?\d{4}"
               r"(?![A-Za-z0-9_-]|\.\d)"),
    # Chinese mobile: 13812345678, 138-1234-5678, 138 1234 5678, 86 13812345678
    re.compile(r"(?<![A-Za-z0-9_+-])(?<!\d\.)(?:86[ -]?)?1[3-9]\d[ -]?\d{4}[ -]?\d{4}(?![A-Za-z0-9_-]|\.\d)"),
    # Chinese landline with its area code: 010-62345678, 0571 8765 4321, (021)62345678
    re.compile(r"(?<![A-Za-z0-9_+-])(?:\(0[1-9]\d{1,2}\)|0[1-9]\d{1,2})[ -]?[2-8]\d{2,3}[ -]?\d{4}"
               r"(?![A-Za-z0-9_-]|\.\d)"),
)
# Chinese numerals read out digit by digit (幺 for 1, 洞 for 0), spaces or commas allowed between them.
_CN_NUMERALS = {"零": "0", "〇": "0", "洞": "0", "一": "1", "幺": "1", "二": "2", "两": "2", "三": "3", "四": "4",
                "五": "5", "六": "6", "七": "7", "八": "8", "九": "9"}
_CN_RUN = re.compile(rf"[{''.join(_CN_NUMERALS)}](?:[\s，,、-]*[{''.join(_CN_NUMERALS)}\d]){{6,}}")
_DIGIT_WORDS = {"zero": "0", "oh": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
                "seven": "7", "eight": "8", "nine": "9"}
_WORD = "(?:" + "|".join(_DIGIT_WORDS) + ")"
# Digits read out as words ("four one one one ..."), as callers say them and some ASR engines write them.
_SPOKEN = re.compile(rf"\b{_WORD}(?:[\s,-]+{_WORD}){{9,18}}\b", re.IGNORECASE)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check every payment card number passes."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def cn_id_valid(number: str) -> bool:
    """GB 11643-1999: the 18th character is a checksum over the first 17 digits."""
    if len(number) != 18 or not number[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == number[17].upper()


def _phone_digits_ok(text: str) -> bool:
    return 8 <= sum(c.isdigit() for c in text) <= 15


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"[ -]", "", match.group())
    return CARD if 13 <= len(digits) <= 19 and luhn_valid(digits) else match.group()


def _spoken(match: re.Match[str]) -> str:
    digits = "".join(_DIGIT_WORDS[w.lower()] for w in re.findall(r"[A-Za-z]+", match.group()))
    if 13 <= len(digits) <= 19 and luhn_valid(digits):
        return CARD
    if len(digits) == 10 or (len(digits) == 11 and digits.startswith("1")):
        return PHONE
    return match.group()


def _chinese_numerals(match: re.Match[str]) -> str:
    """A run of Chinese numerals that is a mobile or landline number, a card or an ID."""
    digits = "".join(_CN_NUMERALS.get(c, c) for c in match.group() if c in _CN_NUMERALS or c.isdigit())
    if cn_id_valid(digits):
        return CN_ID
    if 13 <= len(digits) <= 19 and luhn_valid(digits):
        return CARD
    if re.fullmatch(r"(?:86)?1[3-9]\d{9}|0[1-9]\d{1,2}[2-8]\d{6,7}", digits):
        return PHONE
    return match.group()


def redact(text: str) -> str:
    """The text with card numbers, Chinese ID numbers, e-mail addresses and phone numbers replaced."""
    if not text:
        return text
    text = _SPOKEN.sub(_spoken, text)
    text = _CN_RUN.sub(_chinese_numerals, text)
    if not any(c.isdigit() or c == "@" for c in text):
        return text
    text = _EMAIL.sub(EMAIL, text)
    text = _INTERNATIONAL.sub(lambda m: PHONE if _phone_digits_ok(m.group()) else m.group(), text)
    text = _CN_ID.sub(lambda m: CN_ID if cn_id_valid(m.group()) else m.group(), text)
    text = _PHONES[1].sub(PHONE, text)  # a Chinese mobile, "86" or not, before a card's checksum can claim it
    text = _CARD.sub(_card, text)
    for pattern in _PHONES:
        text = pattern.sub(lambda m: PHONE if _phone_digits_ok(m.group()) else m.group(), text)
    return text


_LONG_DIGIT_RUN = re.compile(r"(?<![A-Za-z0-9])\d{13,}(?![A-Za-z0-9])")  # not inside ids (`CA0123...`)


def redact_stored(text: str) -> str:
    """`redact`, and any unbroken run of 13 or more digits, whatever its checksum (keys typed on the keypad:
    a card number after a menu choice, "114111111111111111#", fails the Luhn check as a whole)."""
    return _LONG_DIGIT_RUN.sub(CARD, redact(text)) if text else text


def redact_log_text(text: str) -> str:
    """`redact`, also seeing through URL escapes (`?caller=%2B16175550142` in an access log line)."""
    if "%" in text:
        decoded = unquote(text)
        if decoded != text and redact(decoded) != decoded:
            return redact(decoded)
    return redact(text)


class RedactingFilter(logging.Filter):
    """Redacts PII in log records: in string arguments first (so formatters that read `record.args`, like
    uvicorn's access log, keep working), then in the final message if anything is left."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_log_text(a) if isinstance(a, str) else a for a in record.args)
        message = record.getMessage()
        cleaned = redact_log_text(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


LOGGER_PREFIXES = ("callpilot", "voice_gateway", "bot", "handoff", "uvicorn")


def install_log_redaction(prefixes: Iterable[str] = LOGGER_PREFIXES) -> RedactingFilter:
    """Put one RedactingFilter on our loggers (and their existing children) and on the root's handlers.

    A logger's filters only see records logged to that very logger, so children get the filter too; the
    root handlers catch children created later.
    """
    wanted = tuple(prefixes)
    manager = logging.root.manager
    names = [n for n in list(manager.loggerDict) if n.split(".")[0] in wanted] + list(wanted)
    existing = next(
        (f for f in logging.getLogger(wanted[0]).filters if isinstance(f, RedactingFilter)), None
    ) if wanted else None
    redacting = existing or RedactingFilter()
    for name in names:
        logger = logging.getLogger(name)
        if redacting not in logger.filters:
            logger.addFilter(redacting)
    for handler in logging.getLogger().handlers:
        if redacting not in handler.filters:
            handler.addFilter(redacting)
    return redacting
