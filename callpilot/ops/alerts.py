"""Threshold alerts with hysteresis: a transition table per rule, evaluated by a periodic asyncio task.

A rule reads one KPI and the number of calls behind it; the reading is classified (breach / between / healthy /
no data, which includes fewer calls than the rule's `min_calls`) and the rule's state moves by `TRANSITIONS`.
Only ok -> firing and firing -> ok are reported, so a value hovering between the fire and clear thresholds
never flaps.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from callpilot.ops.config import AlertRule
from callpilot.ops.webhooks import WebhookDispatcher

log = logging.getLogger("callpilot.alerts")


class AlertState(StrEnum):
    OK = "ok"
    FIRING = "firing"


class Reading(StrEnum):
    """How one measurement compares with a rule's thresholds."""

    BREACH = "breach"  # past `fire`
    BETWEEN = "between"  # between `fire` and `clear` (inclusive): keep the current state
    HEALTHY = "healthy"  # past `clear`
    NO_DATA = "no_data"  # no value, or fewer calls behind it than the rule's `min_calls`: nothing to judge


TRANSITIONS: dict[tuple[AlertState, Reading], AlertState] = {
    (AlertState.OK, Reading.BREACH): AlertState.FIRING,
    (AlertState.OK, Reading.BETWEEN): AlertState.OK,
    (AlertState.OK, Reading.HEALTHY): AlertState.OK,
    (AlertState.OK, Reading.NO_DATA): AlertState.OK,
    (AlertState.FIRING, Reading.BREACH): AlertState.FIRING,
    (AlertState.FIRING, Reading.BETWEEN): AlertState.FIRING,
    (AlertState.FIRING, Reading.HEALTHY): AlertState.OK,
    (AlertState.FIRING, Reading.NO_DATA): AlertState.FIRING,
}


class IllegalAlertTransition(RuntimeError):
    """A (state, reading) pair the table does not list."""


@dataclass(frozen=True)
class Sample:
    """A metric over one window and how many calls it is computed from (e.g. offered calls for answer_rate)."""

    value: float | None
    calls: int


def classify(rule: AlertRule, value: float | None, calls: int | None = None) -> Reading:
    """`calls`: the sample size behind `value` (None: not counted, e.g. a live gauge)."""
    if value is None or (calls is not None and calls < rule.min_calls):
        return Reading.NO_DATA
    if rule.when == "below":
        return Reading.BREACH if value < rule.fire else Reading.HEALTHY if value > rule.clear else Reading.BETWEEN
    return Reading.BREACH if value > rule.fire else Reading.HEALTHY if value < rule.clear else Reading.BETWEEN


def next_state(state: AlertState, reading: Reading) -> AlertState:
    try:
        return TRANSITIONS[(state, reading)]
    except KeyError:
        raise IllegalAlertTransition(f"no transition from {state} on {reading}") from None


@dataclass(frozen=True)
class AlertChange:
    """A rule started firing (`state` firing) or resolved (`state` ok)."""

    rule: AlertRule
    state: AlertState
    value: float | None
    at: datetime
    calls: int | None = None

    @property
    def event(self) -> str:
        return "alert.fired" if self.state is AlertState.FIRING else "alert.resolved"

    def to_payload(self) -> dict[str, object]:
        r = self.rule
        return {"alert": r.name, "state": self.state.value, "metric": r.metric, "value": self.value,
                "when": r.when, "fire": r.fire, "clear": r.clear, "window_s": r.window_s, "calls": self.calls,
                "min_calls": r.min_calls, "at": self.at.isoformat()}


class AlertBook:
    """The state of every rule; `observe` applies one round of measurements and returns what changed."""

    def __init__(self, rules: Iterable[AlertRule]) -> None:
        self.rules = tuple(rules)
        names = [r.name for r in self.rules]
        if len(set(names)) != len(names):
            raise ValueError(f"alert rule names must be unique: {names}")
        self.states = {r.name: AlertState.OK for r in self.rules}
        self.values: dict[str, float | None] = {r.name: None for r in self.rules}

    def observe(self, samples: Mapping[str, Sample], at: datetime) -> list[AlertChange]:
        """`samples`: rule name -> its metric over the rule's window (missing = no data)."""
        changes = []
        for rule in self.rules:
            sample = samples.get(rule.name, Sample(None, 0))
            before = self.states[rule.name]
            after = next_state(before, classify(rule, sample.value, sample.calls))
            self.states[rule.name], self.values[rule.name] = after, sample.value
            if after is not before:
                changes.append(AlertChange(rule, after, sample.value, at, sample.calls))
        return changes

    def firing(self) -> list[str]:
        return [name for name, state in self.states.items() if state is AlertState.FIRING]


# KPIs for [start, end): metric name -> its value and sample size.
Measure = Callable[[datetime, datetime], Awaitable[Mapping[str, Sample]]]
Notify = Callable[[AlertChange], None]


def webhook_notifier(hooks: WebhookDispatcher | None) -> Notify:
    """Log every change, and send it as alert.fired / alert.resolved when webhooks are configured."""

    def notify(change: AlertChange) -> None:
        log.warning("alert %s %s: %s %s %s (value %s over %s calls)", change.rule.name, change.state.value,
                    change.rule.metric, change.rule.when, change.rule.fire, change.value, change.calls)
        if hooks is not None:
            hooks.emit(change.event, change.to_payload())

    return notify


class StateStore(Protocol):
    """Where the rules' states are kept between leaders (callpilot.leader.AlertStates, in Redis)."""

    async def load(self) -> dict[str, str]: ...

    async def save(self, states: dict[str, str]) -> None: ...


class AlertMonitor:
    """Measures every `interval_s` (by the injected clock's time) and notifies on each change. With several
    processes only the leader evaluates (`is_leader`); it continues from the states the last leader stored, so
    a change of leader neither fires an alert again nor forgets one."""

    def __init__(
        self,
        book: AlertBook,
        measure: Measure,
        notify: Notify,
        *,
        clock: Callable[[], datetime],
        interval_s: float = 60.0,
        is_leader: Callable[[], bool] = lambda: True,
        states: StateStore | None = None,
    ) -> None:
        self.book = book
        self.measure = measure
        self.notify = notify
        self.clock = clock
        self.interval_s = interval_s
        self.is_leader = is_leader
        self.states = states
        self._leading = False
        self._task: asyncio.Task[None] | None = None

    async def tick(self) -> list[AlertChange]:
        """One evaluation round: one measurement per distinct window, then the table."""
        now = self.clock()
        by_window: dict[int, Mapping[str, Sample]] = {}
        for window in sorted({r.window_s for r in self.book.rules}):
            by_window[window] = await self.measure(now - timedelta(seconds=window), now)
        samples = {r.name: by_window[r.window_s].get(r.metric, Sample(None, 0)) for r in self.book.rules}
        changes = self.book.observe(samples, now)
        for change in changes:
            self.notify(change)
        return changes

    async def round(self) -> list[AlertChange]:
        """One round of `run`: evaluate if this process leads (first taking over the stored states), else nothing."""
        if not self.is_leader():
            self._leading = False
            return []
        if not self._leading and self.states is not None:
            stored = await self.states.load()
            for name in self.book.states:
                if stored.get(name) in {s.value for s in AlertState}:
                    self.book.states[name] = AlertState(stored[name])
        self._leading = True
        changes = await self.tick()
        if self.states is not None:
            await self.states.save({name: state.value for name, state in self.book.states.items()})
        return changes

    async def run(self) -> None:
        while True:
            try:
                await self.round()
            except Exception:  # a failed measurement (database down) must not stop the monitor
                log.exception("alert evaluation failed")
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        if self._task is None and self.book.rules:
            self._task = asyncio.create_task(self.run(), name="alerts")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
