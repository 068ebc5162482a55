"""Chinese numerals as digits: "四八二一五" -> 48215 (ids read digit by digit, 幺 for 1, 两 for 2, 洞 for 0) and
amounts, days and times said positionally ("十二月五号" -> 12月5号, "三百五十块" -> 350块, "八点" -> 8点)."""

from __future__ import annotations

import re

CN_DIGITS = {
    "零": "0", "〇": "0", "洞": "0", "幺": "1", "一": "1", "二": "2", "两": "2", "三": "3",
    "四": "4", "五": "5", "六": "6", "七": "7", "八": "8", "九": "9",
}  # fmt: skip
CN_UNITS = "十百千万"
_CN_RUN = re.compile(rf"[{''.join(CN_DIGITS)}{CN_UNITS}0-9]+")
# A lone numeral is a number only before a counter or a date/time word ("五号", "三点", "两台"), never in
# words such as 一下, 一直, 三星.
_COUNTERS = "号日月点时分秒块元台个年周岁位次楼天"
_WORDS_NOT_NUMBERS = ("万一", "一一", "一点", "一下", "一个")


def chinese_number_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, digits) for each run of Chinese numerals (possibly mixed with digits) that is a number."""
    runs: list[tuple[int, int, str]] = []
    for m in _CN_RUN.finditer(text):
        run = m.group()
        if run.isascii() or run in _WORDS_NOT_NUMBERS:
            continue
        after = text[m.end() : m.end() + 1]
        if any(u in run for u in CN_UNITS):
            if not any(ch in CN_DIGITS for ch in run) and run != "十":
                continue  # 百, 千万: words, not numbers
            digits = _positional(run)
        elif len(run) >= 2:
            digits = "".join(CN_DIGITS.get(ch, ch) for ch in run)
        else:
            counters = "号日月" if run == "一" else _COUNTERS
            digits = CN_DIGITS[run] if after and after in counters else None
        if digits:
            runs.append((m.start(), m.end(), digits))
    return runs


def _positional(run: str) -> str | None:
    import cn2an

    try:
        return str(cn2an.cn2an(run.replace("幺", "一").replace("洞", "零"), "smart"))
    except (ValueError, KeyError, IndexError):
        return None


def chinese_to_digits(text: str) -> str:
    """`text` with every Chinese number written in digits."""
    out, pos = [], 0
    for start, end, digits in chinese_number_spans(text):
        out += [text[pos:start], digits]
        pos = end
    return "".join(out) + text[pos:]
