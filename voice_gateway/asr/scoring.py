"""Word error rate for transcripts: normalise (case, punctuation, digits as words) then edit distance."""

from __future__ import annotations

import re
from collections.abc import Iterable

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?|\d")


def normalize(text: str) -> list[str]:
    """Lower-case words without punctuation; each digit becomes its word ("7" -> "seven", "oh" stays)."""
    words = _TOKEN.findall(text.lower())
    return [DIGIT_WORDS[int(word)] if word.isdigit() else word for word in words]


def edit_distance(reference: list[str], hypothesis: list[str]) -> int:
    """Substitutions + deletions + insertions turning the reference into the hypothesis."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref_word in enumerate(reference, start=1):
        current = [i]
        for j, hyp_word in enumerate(hypothesis, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word)))
        previous = current
    return previous[-1]


def word_error_rate(pairs: Iterable[tuple[str, str]]) -> float:
    """Corpus WER over (reference, hypothesis) pairs: total edits / total reference words."""
    edits = words = 0
    for reference, hypothesis in pairs:
        ref = normalize(reference)
        edits += edit_distance(ref, normalize(hypothesis))
        words += len(ref)
    if words == 0:
        raise ValueError("no reference words")
    return edits / words
