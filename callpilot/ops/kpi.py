"""Contact-centre KPIs as pure functions over `CallFact`s (definitions in README "KPIs, dashboard and alerts").

A rate whose denominator is zero is `None` ("n/a"), never 0: no offered calls is not a 0 % answer rate.
A caller still waiting for an agent counts in no queue rate until the wait is over (answered or ended), so
one long queue does not read as a 0 % answer rate while nobody has given up yet.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from callpilot.ops.facts import CallFact

DEFAULT_SERVICE_LEVEL_S = 20.0


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def in_window(facts: Iterable[CallFact], start: datetime, end: datetime) -> list[CallFact]:
    """The calls that started in [start, end)."""
    return [f for f in facts if start <= f.started_at < end]


def settled(calls: Sequence[CallFact]) -> int:
    """Offered calls whose wait is over (answered, or ended): a caller still waiting is not decided yet."""
    return sum(f.offered and (f.answered or f.ended_at is not None) for f in calls)


def answer_rate(calls: Sequence[CallFact]) -> float | None:
    """Answered by an agent / offered to agents (whose wait is over)."""
    return _ratio(sum(f.answered for f in calls), settled(calls))


def abandonment_rate(calls: Sequence[CallFact]) -> float | None:
    """Offered, and the caller hung up before an agent answered / offered (whose wait is over)."""
    return _ratio(sum(f.abandoned for f in calls), settled(calls))


def average_speed_of_answer_s(calls: Sequence[CallFact]) -> float | None:
    """Mean of (agent answered - offered) over answered calls."""
    return _mean([s for f in calls if (s := f.speed_of_answer_s) is not None])


def service_level(calls: Sequence[CallFact], threshold_s: float = DEFAULT_SERVICE_LEVEL_S) -> float | None:
    """Answered within `threshold_s` of being offered / offered (whose wait is over)."""
    quick = sum(1 for f in calls if (s := f.speed_of_answer_s) is not None and s <= threshold_s)
    return _ratio(quick, settled(calls))


def average_handle_time_s(calls: Sequence[CallFact]) -> float | None:
    """Mean of talk + wrap-up over answered calls whose talk has ended (no wrap-up recorded counts as 0)."""
    return _mean([f.talk_s + (f.wrap_up_s or 0.0) for f in calls if f.answered and f.talk_s is not None])


def containment_rate(calls: Sequence[CallFact]) -> float | None:
    """Ended without being offered to an agent / ended calls (a live call is not decided yet)."""
    ended = [f for f in calls if f.ended_at is not None]
    return _ratio(sum(not f.offered for f in ended), len(ended))


def handoff_rate(calls: Sequence[CallFact]) -> float | None:
    """Offered to agents / all calls."""
    return _ratio(sum(f.offered for f in calls), len(calls))


def longest_wait_s(facts: Iterable[CallFact], now: datetime) -> float:
    """The longest current wait for an agent among calls still waiting (0 when nobody waits)."""
    return max((w for f in facts if (w := f.waiting_s(now)) is not None), default=0.0)


@dataclass(frozen=True)
class Kpis:
    """Every KPI for one window."""

    start: datetime
    end: datetime
    calls: int
    ended: int
    offered: int
    answered: int
    abandoned: int
    answer_rate: float | None
    abandonment_rate: float | None
    average_speed_of_answer_s: float | None
    service_level: float | None
    service_level_threshold_s: float
    average_handle_time_s: float | None
    containment_rate: float | None
    handoff_rate: float | None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["start"], out["end"] = self.start.isoformat(), self.end.isoformat()
        return out


def compute_kpis(
    facts: Iterable[CallFact], start: datetime, end: datetime, *, service_level_s: float = DEFAULT_SERVICE_LEVEL_S
) -> Kpis:
    """All KPIs over the calls that started in [start, end)."""
    if end <= start:
        raise ValueError(f"empty window: {start.isoformat()} .. {end.isoformat()}")
    calls = in_window(facts, start, end)
    return Kpis(
        start=start,
        end=end,
        calls=len(calls),
        ended=sum(f.ended_at is not None for f in calls),
        offered=sum(f.offered for f in calls),
        answered=sum(f.answered for f in calls),
        abandoned=sum(f.abandoned for f in calls),
        answer_rate=answer_rate(calls),
        abandonment_rate=abandonment_rate(calls),
        average_speed_of_answer_s=average_speed_of_answer_s(calls),
        service_level=service_level(calls, service_level_s),
        service_level_threshold_s=service_level_s,
        average_handle_time_s=average_handle_time_s(calls),
        containment_rate=containment_rate(calls),
        handoff_rate=handoff_rate(calls),
    )


def sample_sizes(kpis: Kpis, settled_calls: int) -> dict[str, int]:
    """How many calls each alert metric is computed from (its denominator), for the rules' `min_calls`."""
    return {"answer_rate": settled_calls, "abandonment_rate": settled_calls, "service_level": settled_calls,
            "containment_rate": kpis.ended, "average_speed_of_answer_s": kpis.answered}


Bucket = Literal["hour", "day"]


def bucket_start(at: datetime, bucket: Bucket) -> datetime:
    """The start (UTC) of the hour or day `at` falls in."""
    at = at.astimezone(UTC)
    if bucket == "hour":
        return at.replace(minute=0, second=0, microsecond=0)
    if bucket == "day":
        return at.replace(hour=0, minute=0, second=0, microsecond=0)
    raise ValueError(f"unknown bucket {bucket!r}: use 'hour' or 'day'")


@dataclass(frozen=True)
class TopicBucket:
    """The most frequent intents of the calls that started in one hour or day."""

    start: datetime
    top: tuple[tuple[str, int], ...]  # (intent, number of calls with it), most frequent first


def hot_topics(
    facts: Iterable[CallFact], *, bucket: Bucket = "day", top: int = 5, ignore: Iterable[str] = ()
) -> list[TopicBucket]:
    """Top intents per bucket, oldest bucket first; an intent counts once per call; ties sort by name."""
    skip = set(ignore)
    counts: dict[datetime, Counter[str]] = {}
    for fact in facts:
        names = set(fact.intents) - skip
        counts.setdefault(bucket_start(fact.started_at, bucket), Counter()).update(names)
    return [
        TopicBucket(start, tuple(sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:top]))
        for start, counter in sorted(counts.items())
    ]


def daily(
    facts: Sequence[CallFact], last_day: datetime, days: int, *, service_level_s: float = DEFAULT_SERVICE_LEVEL_S
) -> list[Kpis]:
    """KPIs for each of the `days` UTC days ending with the day of `last_day`, oldest first (for charts)."""
    first = bucket_start(last_day, "day") - timedelta(days=days - 1)
    return [
        compute_kpis(facts, first + timedelta(days=n), first + timedelta(days=n + 1), service_level_s=service_level_s)
        for n in range(days)
    ]
