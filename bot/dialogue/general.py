"""A general question about a topic ("how long does delivery take?") versus a caller's own case ("where is my
order?"): the first gets the policy answer, then an offer to check a specific order, instead of a form."""

from __future__ import annotations

import re

_GENERAL = re.compile(
    r"\b(how long (?:does|do|will|would|can|should)|how many days|what(?:'s| is| are) (?:the|your)\b.*"
    r"\b(?:policy|policies|rules?|times?)\b|policy|policies|usually|normally|in general|generally|"
    r"typically|do you (?:refund|deliver|ship)|for (?:opened|used|unopened) items?)\b",
    re.IGNORECASE)
_OWN_CASE = re.compile(r"\b(?:my|mine|our|order number|this order|that order|it)\b|\d{3,}", re.IGNORECASE)


def is_general_question(text: str) -> bool:
    """The caller asks how things work in general, not about an order of theirs."""
    return bool(_GENERAL.search(text)) and not _OWN_CASE.search(text)
