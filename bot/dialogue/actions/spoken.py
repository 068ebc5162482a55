"""Back-office days, times and states as the bot says them, in the caller's language."""

from __future__ import annotations

from datetime import date, time

from bot.backoffice.models import DayHours, DeliveryWindow, Refund, RefundStatus

_ZH_WEEKDAYS = ("星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日")


def day(value: date, language: str = "en") -> str:
    """`Tuesday June 17` / `6月17日星期二`."""
    if language == "zh":
        return f"{value.month}月{value.day}日{_ZH_WEEKDAYS[value.weekday()]}"
    return f"{value:%A %B} {value.day}"


def _zh_time(moment: time) -> str:
    """`上午8点`, `中午12点`, `下午2点30分`."""
    hour = moment.hour
    part = "上午" if hour < 12 else "中午" if hour == 12 else "下午" if hour < 18 else "晚上"
    shown = hour if hour <= 12 else hour - 12
    return f"{part}{shown}点" + (f"{moment.minute}分" if moment.minute else "")


def window(value: DeliveryWindow, language: str = "en") -> str:
    if language == "zh":
        return f"{day(value.day, language)}{_zh_time(value.start)}到{_zh_time(value.end)}"
    return value.describe()


def hours(value: DayHours, language: str = "en") -> str:
    if language != "zh":
        return value.describe()
    if value.opens is None or value.closes is None:
        return "休息"
    return f"{_zh_time(value.opens)}到{_zh_time(value.closes)}"


def refund_state(refund: Refund, language: str = "en") -> str:
    zh = language == "zh"
    if refund.status is RefundStatus.PAID and refund.paid_on is not None:
        paid_on = day(refund.paid_on, language)
        return f"已于{paid_on}退回您的账户" if zh else f"paid, it went back to your account on {paid_on}"
    if refund.status is RefundStatus.PROCESSING:
        return "正在处理中，5个工作日内到账" if zh else (
            "being processed and should reach your account within 5 business days")
    return "已经批准，接下来几天内处理" if zh else "approved and will be processed in the next few days"
