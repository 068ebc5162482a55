"""Language of one caller text, by script: Chinese characters mean Mandarin, Latin words English.

A phone line's two languages are told apart by the writing the ASR (or a chat user) produced, which is
more reliable on a two-word turn than any statistical identifier: "转人工" has no English reading and
"agent please" no Chinese one. Mixed turns ("我要refund") go to the language with more of the turn;
a Han character counts as one word. A turn with no letters at all ("48215", "?") says nothing, and
the caller's current language is kept.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

SUPPORTED = ("en", "zh")
LANGUAGE_NAMES = {"en": "English", "zh": "中文"}
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z]+")


def han_count(text: str) -> int:
    return len(_HAN.findall(text))


def detect_language(text: str, languages: Sequence[str] = SUPPORTED) -> str | None:
    """The language of `text` among `languages`, or None when the text has no words to tell by."""
    text = unicodedata.normalize("NFKC", text)
    han = han_count(text)
    latin = len([w for w in _LATIN_WORD.findall(text) if len(w) > 1 or w in ("I", "a")])
    if not han and not latin:
        return None
    if han and "zh" in languages and han >= latin:
        return "zh"
    if latin and "en" in languages:
        return "en"
    return "zh" if han and "zh" in languages else None


@lru_cache(maxsize=1)
def _to_simplified() -> object:
    import opencc

    return opencc.OpenCC("t2s")


def normalise_text(text: str, language: str) -> str:
    """Full-width letters and digits as ASCII (NFKC); for Chinese also traditional characters as simplified.

    Keeps the length where it can, so entity offsets found in the result point into the caller's text.
    """
    folded = "".join(unicodedata.normalize("NFKC", ch) if len(unicodedata.normalize("NFKC", ch)) == 1 else ch
                      for ch in text)
    if language != "zh" or not han_count(folded):
        return folded
    simplified: str = _to_simplified().convert(folded)  # type: ignore[attr-defined]
    return simplified if len(simplified) == len(folded) else folded
