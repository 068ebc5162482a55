"""Chinese words for identifiers, numbers, amounts, dates and times (the `zh` reader of `spoken_text`).

A Chinese service line reads ids digit by digit (48215 -> 四八二一五; a pause between groups only in long
ones: 13812345678 -> 一三八，一二三四，五六七八), amounts positionally (1199 -> 一千一百九十九), times as
八点 / 下午两点半 and dates as 十二月五日.
"""

from __future__ import annotations

from collections.abc import Sequence

import cn2an

DIGITS = ("零", "一", "二", "三", "四", "五", "六", "七", "八", "九")
CURRENCIES = {"$": "美元", "£": "英镑", "€": "欧元", "¥": "元"}


def _number(value: int) -> str:
    said = str(cn2an.an2cn(value))
    return "两" + said[1:] if said.startswith("二") and len(said) > 1 and said[1] in "百千万亿" else said


def _spell(group: str) -> str:
    return "".join(DIGITS[int(c)] if c.isdigit() else c.upper() for c in group)


class ChineseReader:
    """Says numbers the way a Mandarin customer-service agent does."""

    language: str = "zh"
    months: tuple[str, ...] = tuple(f"{m}月" for m in range(1, 13))

    def identifier(self, groups: Sequence[str]) -> str:
        short = sum(c.isdigit() for group in groups for c in group) <= 6
        return ("" if short else "，").join(_spell(group) for group in groups)

    def phone(self, groups: Sequence[str]) -> str:
        return "加" + self.identifier(groups)

    def cardinal(self, number: int) -> str:
        return _number(number)

    def decimal(self, whole: int, fraction: str) -> str:
        return f"{_number(whole)}点{''.join('零一二三四五六七八九'[int(c)] for c in fraction)}"

    def ordinal(self, number: int) -> str:
        return "第" + _number(number)

    def money(self, currency: str, units: int, cents: int) -> str:
        unit = CURRENCIES.get(currency, "元")
        said = f"{_number(units)}{unit}" if units or not cents else ""
        if cents:
            said += f"{_number(cents)}{'分' if unit == '元' else '美分' if unit == '美元' else '便士'}"
        return said

    def percent(self, spoken_number: str) -> str:
        return f"百分之{spoken_number}"

    def time(self, hour: int, minute: int, half: str | None) -> str:
        if half == "pm" and hour < 12:
            hour += 12
        part = "" if half is None and hour < 12 else ("上午" if hour < 12 else "中午" if hour == 12 else
                                                      "下午" if hour < 18 else "晚上")
        shown = hour if hour <= 12 else hour - 12
        hours = "两" if shown == 2 else _number(shown)
        minutes = "" if minute == 0 else "半" if minute == 30 else f"{_number(minute)}分"
        return f"{part}{hours}点{minutes}"

    def date(self, year: int | None, month: int, day: int) -> str:
        said = f"{_number(month)}月{_number(day)}日"
        return f"{''.join('零一二三四五六七八九'[int(c)] for c in str(year))}年{said}" if year is not None else said


CHINESE = ChineseReader()
