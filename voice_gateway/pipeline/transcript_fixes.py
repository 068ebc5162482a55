"""Repairs of what small ASR models mishear before the text reaches the NLU.

Whisper tiny.en hears "four eight two one five" as "for 8215": the leading "four" becomes the preposition and
the rest a number. A bare run of digits right after "for" (or "fore") is read back as "4" + digits only when
that makes an identifier the bot expects (the NLU's id patterns, e.g. order numbers `\\b4\\d{4,7}\\b`) and the
digits alone are not one - so "wait for 48215", "a table for 4", "for 1500 dollars" and "$1,500" stay as heard.
It also splits a read-out number in two ("for 821 5", "48 215"): groups of digits with only spaces between them
are joined when together (with that leading 4) they make an identifier and none of them is one alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

UNITS = frozenset({
    "dollars", "dollar", "pounds", "pound", "euros", "euro", "bucks", "percent", "years", "year", "months",
    "month", "weeks", "week", "days", "day", "hours", "hour", "minutes", "minute", "seconds", "second",
    "times", "items", "item", "people", "pieces", "units", "miles", "kilometers",
})  # fmt: skip
# Groups of bare digits with only spaces between them ("821 5"); not parts of decimals or amounts.
_DIGIT_GROUPS = re.compile(r"(?<![\d.,$])\b\d+(?:[ ]+\d+)+\b(?![.,]\d)")
# "for" + a bare run of digits (no decimal part) + the next word, if any.
_FOR_DIGITS = re.compile(r"\b(?:for|fore)\s+(\d{2,})(?!\d|[.,]\d)(?:\s+([A-Za-z]+))?", re.IGNORECASE)


class TranscriptFixer:
    """Knows which identifiers callers read out (regular expressions), and repairs transcripts with that."""

    def __init__(self, id_patterns: Iterable[str]) -> None:
        self.id_patterns = tuple(re.compile(pattern) for pattern in id_patterns)

    def _is_id(self, digits: str) -> bool:
        return any(pattern.search(f" {digits} ") for pattern in self.id_patterns)

    def _join(self, match: re.Match[str]) -> str:
        digits, following = match.group(1), match.group(2)
        if following is not None and following.lower() in UNITS:
            return match.group(0)
        if self._is_id(digits) or not self._is_id("4" + digits):
            return match.group(0)
        return "4" + match.group(0)[match.start(1) - match.start(0) :]

    def _join_groups(self, match: re.Match[str]) -> str:
        groups = match.group(0).split()
        joined = "".join(groups)
        if any(self._is_id(group) for group in groups):
            return match.group(0)
        after_for = re.search(r"\b(?:for|fore)\s+$", match.string[:match.start()], re.IGNORECASE) is not None
        if self._is_id(joined) or (after_for and self._is_id("4" + joined)):
            return joined
        return match.group(0)

    def fix(self, text: str) -> str:
        """The caller's words with known ASR mishearings repaired; anything else unchanged."""
        return _FOR_DIGITS.sub(self._join, _DIGIT_GROUPS.sub(self._join_groups, text))
