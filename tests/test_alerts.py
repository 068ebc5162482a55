"""Alerts: the hysteresis table, no flapping, and the periodic monitor over real KPIs delivering webhooks."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from callpilot.ops.alerts import (
    TRANSITIONS,
    AlertBook,
    AlertChange,
    AlertMonitor,
    AlertState,
    IllegalAlertTransition,
    Reading,
    Sample,
    classify,
    next_state,
    webhook_notifier,
)
from callpilot.ops.config import AlertRule
from callpilot.ops.facts import CallFact
from callpilot.ops.kpi import compute_kpis, in_window, longest_wait_s, sample_sizes, settled
from callpilot.ops.webhooks import Backoff, Subscription, WebhookDispatcher
from tests.clocks import as_datetime, fake_clock_at
from tests.webhook_receiver import SECRET, Receiver

pytestmark = pytest.mark.anyio

ANSWER_RATE = AlertRule(name="answer_rate_low", metric="answer_rate", when="below", fire=0.80, clear=0.85)
LONG_WAIT = AlertRule(name="longest_wait_high", metric="longest_wait_s", when="above", fire=60, clear=30)
T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def run_series(rule: AlertRule, values: list[float | None], calls: int = 100) -> list[tuple[int, str]]:
    """Feed one value per minute (over `calls` calls); return (index, new state) for each change."""
    book = AlertBook([rule])
    changes = []
    for n, value in enumerate(values):
        for change in book.observe({rule.name: Sample(value, calls)}, T0 + timedelta(minutes=n)):
            changes.append((n, change.state.value))
    return changes


def test_readings_at_the_thresholds() -> None:
    assert classify(ANSWER_RATE, 0.79) is Reading.BREACH
    assert classify(ANSWER_RATE, 0.80) is Reading.BETWEEN  # fires strictly below 80 %
    assert classify(ANSWER_RATE, 0.85) is Reading.BETWEEN  # clears strictly above 85 %
    assert classify(ANSWER_RATE, 0.851) is Reading.HEALTHY
    assert classify(ANSWER_RATE, None) is Reading.NO_DATA
    assert classify(LONG_WAIT, 61) is Reading.BREACH and classify(LONG_WAIT, 29) is Reading.HEALTHY
    assert classify(LONG_WAIT, 45) is Reading.BETWEEN


def test_the_table_covers_every_pair_and_rejects_strangers() -> None:
    assert set(TRANSITIONS) == {(s, r) for s in AlertState for r in Reading}
    with pytest.raises(IllegalAlertTransition, match="no transition"):
        next_state("paused", Reading.BREACH)  # type: ignore[arg-type]


def test_answer_rate_fires_below_80_and_resolves_only_above_85() -> None:
    series = [0.90, 0.79, 0.82, 0.84, 0.81, 0.85, 0.86, 0.83, 0.79]
    assert run_series(ANSWER_RATE, series) == [(1, "firing"), (6, "ok"), (8, "firing")]


def test_a_value_wobbling_around_the_fire_threshold_does_not_flap() -> None:
    wobble = [0.79, 0.81, 0.79, 0.81, 0.80, 0.79, 0.84]
    assert run_series(ANSWER_RATE, wobble) == [(0, "firing")]  # one alert, no resolve until > 85 %


def test_no_data_keeps_the_current_state() -> None:
    assert run_series(ANSWER_RATE, [0.5, None, None, 0.9, None]) == [(0, "firing"), (3, "ok")]


def test_a_rate_over_fewer_calls_than_min_calls_is_no_data() -> None:
    assert ANSWER_RATE.min_calls == 20 and LONG_WAIT.min_calls == 0  # defaults: rates 20, the live gauge 0
    assert classify(ANSWER_RATE, 0.0, calls=1) is Reading.NO_DATA  # one abandoned call at night
    assert classify(ANSWER_RATE, 0.5, calls=19) is Reading.NO_DATA
    assert classify(ANSWER_RATE, 0.5, calls=20) is Reading.BREACH
    assert run_series(ANSWER_RATE, [0.0, 0.5, 0.9], calls=3) == []
    quiet = ANSWER_RATE.model_copy(update={"min_calls": 3})
    assert run_series(quiet, [0.0, 0.5, 0.9], calls=3) == [(0, "firing"), (2, "ok")]
    assert classify(LONG_WAIT, 90, calls=1) is Reading.BREACH  # one caller waiting too long is worth an alert
    assert AlertRule(name="w", metric="longest_wait_s", when="above", fire=60, clear=30, min_calls=2).min_calls == 2


def test_longest_wait_fires_above_60_s_and_resolves_below_30_s() -> None:
    assert run_series(LONG_WAIT, [10, 61, 45, 31, 30, 29, 59, 70]) == [(1, "firing"), (5, "ok"), (7, "firing")]


def test_rules_are_checked_when_configured() -> None:
    with pytest.raises(ValidationError, match="clear must be >= fire"):
        AlertRule(name="bad", metric="answer_rate", when="below", fire=0.8, clear=0.7)
    with pytest.raises(ValidationError, match="clear must be <= fire"):
        AlertRule(name="bad", metric="longest_wait_s", when="above", fire=60, clear=90)
    with pytest.raises(ValueError, match="unique"):
        AlertBook([ANSWER_RATE, ANSWER_RATE])


def offered(n: int, *, answered: bool, start: datetime) -> CallFact:
    began = start + timedelta(minutes=n)
    return CallFact(f"c{n}", began, ended_at=began + timedelta(minutes=5), offered_at=began + timedelta(seconds=30),
                    answered_at=began + timedelta(seconds=40) if answered else None, talk_s=60 if answered else None,
                    caller_hung_up=not answered)


async def test_the_monitor_measures_real_kpis_over_its_window_by_the_injected_clock() -> None:
    facts: list[CallFact] = []
    clock = fake_clock_at(T0)

    async def measure(start: datetime, end: datetime) -> Mapping[str, Sample]:
        k = compute_kpis(facts, start, end)
        calls = sample_sizes(k, settled(in_window(facts, start, end)))
        return {"answer_rate": Sample(k.answer_rate, calls["answer_rate"]),
                "longest_wait_s": Sample(longest_wait_s(facts, end), 0)}

    notified: list[AlertChange] = []
    rule = ANSWER_RATE.model_copy(update={"min_calls": 4})
    monitor = AlertMonitor(AlertBook([rule, LONG_WAIT]), measure, notified.append, clock=as_datetime(clock))
    assert await monitor.tick() == []  # no calls: no data, stays ok
    facts += [offered(n, answered=False, start=T0 - timedelta(minutes=55)) for n in range(3)]
    assert await monitor.tick() == []  # 0 / 3 answered, but 3 calls are fewer than min_calls: no data
    facts.clear()

    facts += [offered(n, answered=n % 3 != 0, start=T0 - timedelta(minutes=50)) for n in range(6)]
    # c0 and c3 abandoned: 4 answered / 6 offered = 0.667 < 0.80
    (fired,) = await monitor.tick()
    assert (fired.rule.name, fired.state, fired.value) == ("answer_rate_low", AlertState.FIRING, pytest.approx(4 / 6))

    facts += [offered(n, answered=True, start=T0 - timedelta(minutes=40)) for n in range(10, 14)]
    assert await monitor.tick() == []  # 8 / 10 = 0.80: between the thresholds, still firing

    clock.advance(16 * 60)  # the window is now 09:16-10:16: c0-c5 (09:10-09:15) left it
    (resolved,) = await monitor.tick()  # 4 / 4 answered = 1.0 > 0.85
    assert resolved.state is AlertState.OK and notified == [fired, resolved]
    assert monitor.book.firing() == []


async def test_the_monitor_task_delivers_alert_webhooks_to_a_receiver() -> None:
    waiting = CallFact("w1", T0 - timedelta(minutes=3), offered_at=T0 - timedelta(seconds=90))

    rounds: list[datetime] = []

    async def measure(start: datetime, end: datetime) -> Mapping[str, Sample]:
        rounds.append(end)
        return {"longest_wait_s": Sample(longest_wait_s([waiting], end), 1)}  # 90 s > 60 s

    with Receiver(SECRET) as receiver:
        hooks = WebhookDispatcher([Subscription(receiver.url, SECRET)], backoff=Backoff(0.01, 0.05, 3))
        await hooks.start()
        monitor = AlertMonitor(AlertBook([LONG_WAIT]), measure, webhook_notifier(hooks),
                               clock=as_datetime(fake_clock_at(T0)), interval_s=0.01)
        monitor.start()
        while len(rounds) < 5 or not receiver.posts:
            await asyncio.sleep(0.01)
        await monitor.stop()
        await hooks.drain()
        await hooks.stop()
    (request,) = receiver.posts  # fired once, not once per evaluation round
    body = request["body"]
    assert isinstance(body, dict) and request["valid"]
    assert request["event"] == "alert.fired"
    assert body["data"]["alert"] == "longest_wait_high" and body["data"]["value"] == 90.0


def test_rules_and_webhooks_come_from_typed_settings() -> None:
    from callpilot.settings import Settings, SettingsError

    settings = Settings.load(environ={
        "CALLPILOT_ALERT_RULES": "[{name: abandon_high, metric: abandonment_rate, when: above, fire: 0.1, clear: 0.05}]",
        "CALLPILOT_WEBHOOKS": '[{"url": "http://127.0.0.1:9/hook", "secret": "s3cret-s3cret", "events": ["alert.fired"]}]',
    })
    (rule,) = settings.alert_rules
    assert (rule.metric, rule.when, rule.fire, rule.clear, rule.window_s, rule.min_calls) == (
        "abandonment_rate", "above", 0.1, 0.05, 3600, 20)
    night = Settings.load(environ={"CALLPILOT_ALERT_RULES": "[{name: a, metric: answer_rate, when: below, fire: 0.8, "
                                                           "clear: 0.85, window_s: 3600, min_calls: 50}]"})
    assert night.alert_rules[0].min_calls == 50
    assert settings.webhooks[0].events == ("alert.fired",)
    assert [r.name for r in Settings().alert_rules] == ["answer_rate_low", "longest_wait_high"]
    with pytest.raises(SettingsError, match=r"alert_rules\.0\.metric"):
        Settings.load(environ={"CALLPILOT_ALERT_RULES": "[{name: x, metric: mood, when: above, fire: 1, clear: 0}]"})
    with pytest.raises(SettingsError, match=r"webhooks\.0\.events\.0"):
        Settings.load(environ={"CALLPILOT_WEBHOOKS": "[{url: 'http://x', secret: 12345678, events: [call.exploded]}]"})
