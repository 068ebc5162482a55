"""The `/dashboard` page: today's and the last 7 days' KPIs, SVG charts, hot topics, live queues, alerts.

Everything is computed here from `CallFact`s and rendered server-side by a Jinja2 template, so the page needs
no JavaScript library and works offline; it refreshes itself every 30 seconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from callpilot.ops.charts import Series, rate_lines, stacked_bars
from callpilot.ops.facts import CallFact
from callpilot.ops.kpi import Kpis, bucket_start, compute_kpis, daily, hot_topics, longest_wait_s
from callpilot.ops.metrics import FloorView

DAYS = 7
SMALL_TALK = ("greet", "goodbye", "affirm", "deny", "thank_you", "nlu_fallback")

_templates = Environment(loader=PackageLoader("callpilot.ops", "templates"), autoescape=select_autoescape())
QUEUE_LABELS = {"orders": "Orders", "returns": "Returns", "tech": "Technical support", "billing": "Billing",
                "general": "General"}


def human(code: str) -> str:
    """A code as words for the main view: `check_order_status` -> "Check order status"."""
    words = str(code).replace("_", " ").strip()
    return words[:1].upper() + words[1:]


_templates.filters["human"] = human


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def seconds(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.0f} s" if value < 120 else f"{value / 60:.1f} min"


@dataclass(frozen=True)
class Tile:
    """One figure on the page: label, today's value, the 7 days' value."""

    label: str
    today: str
    week: str
    help: str


def tiles(today: Kpis, week: Kpis) -> list[Tile]:
    t = today.service_level_threshold_s
    return [
        Tile("Calls", str(today.calls), str(week.calls), "calls started"),
        Tile("Offered to agents", str(today.offered), str(week.offered), "handed off to the agent queues"),
        Tile("Answer rate", percent(today.answer_rate), percent(week.answer_rate), "answered / offered"),
        Tile("Abandonment rate", percent(today.abandonment_rate), percent(week.abandonment_rate),
             "caller hung up while waiting / offered"),
        Tile("Avg speed of answer", seconds(today.average_speed_of_answer_s),
             seconds(week.average_speed_of_answer_s), "offered -> agent answered"),
        Tile(f"Service level ({t:g} s)", percent(today.service_level), percent(week.service_level),
             f"answered within {t:g} s / offered"),
        Tile("Avg handle time", seconds(today.average_handle_time_s), seconds(week.average_handle_time_s),
             "talk + wrap-up"),
        Tile("Bot containment", percent(today.containment_rate), percent(week.containment_rate),
             "ended without a handoff / ended"),
        Tile("Handoff rate", percent(today.handoff_rate), percent(week.handoff_rate), "offered / calls"),
    ]


def floor_rows(floor: FloorView | None) -> list[dict[str, Any]] | None:
    if floor is None:
        return None
    return [
        {"name": q.name, "label": QUEUE_LABELS.get(q.name, human(q.name)), "waiting": len(q.waiting),
         "longest_wait": seconds(q.longest_wait_s),
         "agents_available": q.agents_available}
        for q in floor.queues
    ]


def context(
    facts: Sequence[CallFact],
    now: datetime,
    *,
    floor: FloorView | None,
    alerts: Mapping[str, str],
    service_level_s: float,
) -> dict[str, Any]:
    """Everything the template shows, as plain values."""
    midnight = bucket_start(now, "day")
    first_day = midnight - timedelta(days=DAYS - 1)
    today = compute_kpis(facts, midnight, midnight + timedelta(days=1), service_level_s=service_level_s)
    week = compute_kpis(facts, first_day, midnight + timedelta(days=1), service_level_s=service_level_s)
    days = daily(facts, now, DAYS, service_level_s=service_level_s)
    labels = [d.start.strftime("%a %d") for d in days]
    volume = stacked_bars("Calls per day", labels, [
        Series("contained by the bot", [d.calls - d.offered for d in days], "#3b82f6"),
        Series("offered to agents", [d.offered for d in days], "#f59e0b"),
    ])
    rates = rate_lines("Rates per day", labels, [
        Series("answer rate", [d.answer_rate for d in days], "#16a34a"),
        Series("containment", [d.containment_rate for d in days], "#3b82f6"),
        Series("service level", [d.service_level for d in days], "#9333ea"),
    ])
    todays = [f for f in facts if f.started_at >= midnight]
    hours = hot_topics(todays, bucket="hour", top=3, ignore=SMALL_TALK)
    week_top = _top_over(facts, first_day)
    return {
        "now": now,
        "tiles": tiles(today, week),
        "volume_chart": volume,
        "rates_chart": rates,
        "days": days,
        "hours": [{"start": h.start.strftime("%H:00"), "iso": h.start.isoformat(), "top": h.top} for h in hours],
        "week_top": week_top,
        "queues": floor_rows(floor),
        "longest_wait": seconds(longest_wait_s(facts, now)),
        "alerts": dict(alerts),
        "service_level_s": service_level_s,
    }


def _top_over(facts: Sequence[CallFact], since: datetime, top: int = 8) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for fact in facts:
        if fact.started_at >= since:
            for name in set(fact.intents) - set(SMALL_TALK):
                counts[name] = counts.get(name, 0) + 1
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]


def render(values: Mapping[str, Any]) -> str:
    return _templates.get_template("dashboard.html").render(**values)


def render_login(error: str | None = None, *, page: str = "Dashboard", action: str = "/dashboard/login",
                 who: str = "With a supervisor or admin API key") -> str:
    return _templates.get_template("login.html").render(error=error, page=page, action=action, who=who)


def render_page(name: str, values: Mapping[str, Any]) -> str:
    """Another page of the operations templates (the call history's)."""
    return _templates.get_template(name).render(**values)
