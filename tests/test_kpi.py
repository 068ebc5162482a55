"""KPI formulas against a hand-computed day of ten calls (the arithmetic is in the comments)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from callpilot.ops.facts import CallFact, fact_from_record
from callpilot.ops.kpi import compute_kpis, daily, hot_topics, longest_wait_s
from callpilot.records.models import CallRecord

DAY = datetime(2026, 11, 26, tzinfo=UTC)


def at(hh: int, mm: int, ss: int = 0) -> datetime:
    return DAY.replace(hour=hh, minute=mm, second=ss)


def s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


# c1-c4: the bot alone; c5-c10: offered to agents one minute in.
CALLS = [
    CallFact("c1", at(9, 0), ended_at=at(9, 3), intents=("check_order_status",)),
    CallFact("c2", at(9, 10), ended_at=at(9, 12), intents=("store_hours",)),
    CallFact("c3", at(9, 20), ended_at=at(9, 21), intents=("check_order_status",)),
    CallFact("c4", at(9, 30), intents=("greet",)),  # still talking to the bot
    # answered after 10 s, talk 120 s + wrap-up 30 s = 150 s handled
    CallFact("c5", at(9, 40), ended_at=at(9, 45), offered_at=at(9, 41), answered_at=at(9, 41) + s(10),
             talk_s=120, wrap_up_s=30, intents=("report_fault", "agent_request")),
    # answered after 40 s, talk 200 s, no wrap-up recorded = 200 s handled
    CallFact("c6", at(10, 0), ended_at=at(10, 6), offered_at=at(10, 1), answered_at=at(10, 1) + s(40),
             talk_s=200, intents=("report_fault",)),
    # answered after 15 s, talk 90 s + wrap-up 60 s = 150 s handled
    CallFact("c7", at(10, 10), ended_at=at(10, 14), offered_at=at(10, 11), answered_at=at(10, 11) + s(15),
             talk_s=90, wrap_up_s=60, intents=("report_fault", "check_order_status")),
    # the caller gave up waiting: abandoned
    CallFact("c8", at(10, 20), ended_at=at(10, 23), offered_at=at(10, 21), caller_hung_up=True,
             intents=("agent_request",)),
    # the queue overflowed to a callback: offered, not answered, not abandoned
    CallFact("c9", at(10, 30), ended_at=at(10, 34), offered_at=at(10, 31), caller_hung_up=False,
             intents=("report_fault",)),
    # still waiting at 10:50:00, offered at 10:48:45: 75 s so far
    CallFact("c10", at(10, 40), offered_at=at(10, 48, 45), intents=("check_order_status", "check_order_status")),
]


def test_the_whole_day() -> None:
    k = compute_kpis(CALLS, at(9, 0), at(11, 0), service_level_s=20)
    assert (k.calls, k.ended, k.offered, k.answered, k.abandoned) == (10, 8, 6, 3, 1)
    # c10 is still waiting: it counts in no queue rate yet, so the rates are over c5-c9
    assert k.answer_rate == pytest.approx(3 / 5)  # c5, c6, c7
    assert k.abandonment_rate == pytest.approx(1 / 5)  # c8
    assert k.average_speed_of_answer_s == pytest.approx((10 + 40 + 15) / 3)  # 21.67 s
    assert k.service_level == pytest.approx(2 / 5)  # c5 (10 s) and c7 (15 s) within 20 s
    assert k.average_handle_time_s == pytest.approx((150 + 200 + 150) / 3)  # 166.67 s
    assert k.containment_rate == pytest.approx(3 / 8)  # c1-c3 of the 8 ended calls (c4, c10 are live)
    assert k.handoff_rate == pytest.approx(6 / 10)


def test_the_service_level_threshold_is_inclusive() -> None:
    assert compute_kpis(CALLS, at(9, 0), at(11, 0), service_level_s=39).service_level == pytest.approx(2 / 5)
    assert compute_kpis(CALLS, at(9, 0), at(11, 0), service_level_s=40).service_level == pytest.approx(3 / 5)


def test_the_ten_oclock_hour_only() -> None:
    k = compute_kpis(CALLS, at(10, 0), at(11, 0))  # c6-c10; c10 still waits, so the rates are over c6-c9
    assert (k.calls, k.ended, k.offered, k.answered, k.abandoned) == (5, 4, 5, 2, 1)
    assert k.answer_rate == pytest.approx(2 / 4)
    assert k.abandonment_rate == pytest.approx(1 / 4)
    assert k.average_speed_of_answer_s == pytest.approx((40 + 15) / 2)  # 27.5 s
    assert k.service_level == pytest.approx(1 / 4)  # only c7 (15 s) within the default 20 s
    assert k.average_handle_time_s == pytest.approx((200 + 150) / 2)  # 175 s
    assert k.containment_rate == 0.0  # every ended call went to agents
    assert k.handoff_rate == 1.0


def test_an_empty_window_has_no_rates_rather_than_zero_rates() -> None:
    k = compute_kpis(CALLS, at(12, 0), at(13, 0))
    assert k.calls == 0
    assert k.answer_rate is None and k.containment_rate is None and k.average_handle_time_s is None
    assert k.to_dict()["start"] == "2026-11-26T12:00:00+00:00"
    with pytest.raises(ValueError, match="empty window"):
        compute_kpis(CALLS, at(13, 0), at(12, 0))


def test_bot_only_hour_answers_nothing_but_contains_everything_ended() -> None:
    k = compute_kpis(CALLS, at(9, 0), at(9, 35))  # c1-c4
    assert k.offered == 0 and k.answer_rate is None and k.service_level is None
    assert k.containment_rate == 1.0  # c1-c3 ended without a handoff; c4 is still live
    assert k.handoff_rate == 0.0


def test_longest_wait_is_the_oldest_caller_still_waiting() -> None:
    assert longest_wait_s(CALLS, at(10, 50)) == 75.0  # c10; c8 and c9 ended, c5-c7 were answered
    assert longest_wait_s(CALLS[:9], at(10, 50)) == 0.0


def test_hot_topics_per_hour_count_each_call_once_and_break_ties_by_name() -> None:
    hours = hot_topics(CALLS, bucket="hour", top=2)
    assert [h.start for h in hours] == [at(9, 0), at(10, 0)]
    # 09h: check_order_status c1, c3 = 2; then agent_request, greet, report_fault, store_hours = 1 each
    assert hours[0].top == (("check_order_status", 2), ("agent_request", 1))
    # 10h: report_fault c6, c7, c9 = 3; check_order_status c7, c10 (twice in c10, counted once) = 2
    assert hours[1].top == (("report_fault", 3), ("check_order_status", 2))


def test_hot_topics_per_day_can_ignore_small_talk() -> None:
    (day,) = hot_topics(CALLS, bucket="day", top=3, ignore=["agent_request"])
    # check_order_status c1, c3, c7, c10 = 4; report_fault c5, c6, c7, c9 = 4; greet 1, store_hours 1
    assert day.start == DAY and day.top == (("check_order_status", 4), ("report_fault", 4), ("greet", 1))
    with pytest.raises(ValueError, match="unknown bucket"):
        hot_topics(CALLS, bucket="week")  # type: ignore[arg-type]


def test_daily_series_for_a_chart() -> None:
    week = daily(CALLS, at(18, 0), 7)
    assert [k.start.day for k in week] == [20, 21, 22, 23, 24, 25, 26]
    assert [k.calls for k in week] == [0, 0, 0, 0, 0, 0, 10]


def test_the_adapter_reads_a_calls_row() -> None:
    waited = CallRecord(
        call_id="r1", started_at=at(9, 0), ended_at=at(9, 5), end_reason="hangup", status="abandoned",
        handoff_at=at(9, 1), wait_s=240.0, intents=["report_fault", "agent_request"], extra={},
    )
    fact = fact_from_record(waited)
    assert fact.offered and not fact.answered and fact.abandoned  # the caller hung up while waiting
    assert fact.intents == ("report_fault", "agent_request")
    overflowed = CallRecord(call_id="r2", started_at=at(9, 0), ended_at=at(9, 5), end_reason="callback",
                            status="abandoned", handoff_at=at(9, 1), intents=[], extra={})
    assert not fact_from_record(overflowed).abandoned
    # answered after 12 s, then handed back to the bot (which clears agent_connected_at)
    talked = CallRecord(call_id="r3", started_at=at(9, 0), ended_at=at(9, 9), end_reason="hangup", status="completed",
                        handoff_at=at(9, 1), agent_id="a1", agent_connected_at=None, wait_s=12.0, talk_s=300.0,
                        intents=[{"name": "billing"}], extra={"wrap_up_s": 45})
    fact = fact_from_record(talked)
    assert fact.answered and fact.speed_of_answer_s == 12.0 and not fact.abandoned
    assert (fact.talk_s, fact.wrap_up_s, fact.intents) == (300.0, 45.0, ("billing",))


def test_a_caller_still_waiting_is_not_yet_a_missed_answer() -> None:
    waiting = [CallFact("w1", at(9, 0), offered_at=at(9, 1))]
    k = compute_kpis(waiting, at(9, 0), at(10, 0))
    assert k.offered == 1 and k.answer_rate is None and k.abandonment_rate is None and k.service_level is None
    answered = [CallFact("w1", at(9, 0), offered_at=at(9, 1), answered_at=at(9, 1) + s(5))]  # talking, not ended
    assert compute_kpis(answered, at(9, 0), at(10, 0)).answer_rate == 1.0
