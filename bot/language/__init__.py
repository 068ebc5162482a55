"""The line's languages: which language a text is in, and Chinese text made ready for the NLU."""

from bot.language.detect import LANGUAGE_NAMES, SUPPORTED, detect_language, han_count, normalise_text
from bot.language.numerals import chinese_number_spans, chinese_to_digits

__all__ = ["LANGUAGE_NAMES", "SUPPORTED", "chinese_number_spans", "chinese_to_digits", "detect_language", "han_count",
           "normalise_text"]
