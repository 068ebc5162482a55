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
# The same in Chinese: 一般/通常 ("usually"), 多久/几天 ("how long") without 我的/这个订单 ("my", "this order").
_GENERAL_ZH = re.compile(r"一般|通常|平时|正常|多久|几天|多长时间|什么政策|规定|规则")
_OWN_CASE_ZH = re.compile(r"我的|我家|我买的|我订的|我那|这个订单|这单|那单|订单号|[0-9零〇一二三四五六七八九幺两]{4,}")


def is_general_question(text: str) -> bool:
    """The caller asks how things work in general, not about an order of theirs."""
    if _GENERAL_ZH.search(text):
        return not _OWN_CASE_ZH.search(text)
    return bool(_GENERAL.search(text)) and not _OWN_CASE.search(text)
