"""English words for identifiers, numbers, amounts, dates and times (the `en` reader of `spoken_text`)."""

from __future__ import annotations

from collections.abc import Sequence

from num2words import num2words

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
CURRENCIES = {"$": ("dollar", "dollars", "cent", "cents"), "£": ("pound", "pounds", "penny", "pence"),
              "€": ("euro", "euros", "cent", "cents"), "¥": ("yuan", "yuan", "fen", "fen")}


def _words(number: int, to: str = "cardinal") -> str:
    # num2words writes "one thousand, one hundred and ninety-nine": a comma would make the engine pause.
    return str(num2words(number, lang="en", to=to)).replace(",", "")


def _spell(group: str) -> str:
    """Each character of a group: digits by name, letters as capitals the engine spells ("B L F")."""
    return " ".join(DIGITS[int(c)] if c.isdigit() else c.upper() for c in group)


class EnglishReader:
    """Says numbers the way an American English speaker on the phone does."""

    language: str = "en"
    months: tuple[str, ...] = ("January", "February", "March", "April", "May", "June", "July", "August",
                               "September", "October", "November", "December")

    def identifier(self, groups: Sequence[str]) -> str:
        return ", ".join(_spell(group) for group in groups)

    def phone(self, groups: Sequence[str]) -> str:
        return "plus " + self.identifier(groups)

    def cardinal(self, number: int) -> str:
        return _words(number)

    def decimal(self, whole: int, fraction: str) -> str:
        return f"{_words(whole)} point {_spell(fraction)}"

    def ordinal(self, number: int) -> str:
        return _words(number, "ordinal")

    def money(self, currency: str, units: int, cents: int) -> str:
        one, many, one_cent, many_cents = CURRENCIES[currency]
        said = f"{_words(units)} {one if units == 1 else many}" if units or not cents else ""
        if cents:
            coins = f"{_words(cents)} {one_cent if cents == 1 else many_cents}"
            said = f"{said} and {coins}" if said else coins
        return said

    def percent(self, spoken_number: str) -> str:
        return f"{spoken_number} percent"

    def time(self, hour: int, minute: int, half: str | None) -> str:
        if half is None:  # 24-hour clock
            half = "am" if hour < 12 else "pm"
            hour = hour % 12 or 12
        minutes = "" if minute == 0 else f" oh {_words(minute)}" if minute < 10 else f" {_words(minute)}"
        return f"{_words(hour)}{minutes} {'A M' if half == 'am' else 'P M'}"

    def date(self, year: int | None, month: int, day: int) -> str:
        said = f"{self.months[month - 1]} {_words(day, 'ordinal')}"
        return f"{said}, {_words(year, 'year')}" if year is not None else said


ENGLISH = EnglishReader()
