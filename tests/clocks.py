"""The tests' clocks: `FakeClock` (handoff.testing's, the one the handoff harness takes) is epoch seconds that move
only when the test says so; `fake_clock_at` starts one at a datetime, `as_datetime` reads one as an aware UTC
datetime; `RealClock` is the wall clock in a FakeClock's shape, for tests on real sockets and timers."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from handoff.testing import FakeClock

__all__ = ["FakeClock", "RealClock", "as_datetime", "fake_clock_at"]


def fake_clock_at(moment: datetime) -> FakeClock:
    return FakeClock(moment.timestamp())


def as_datetime(clock: Callable[[], float]) -> Callable[[], datetime]:
    """The clock for parts that want a datetime (the alert monitor)."""
    return lambda: datetime.fromtimestamp(clock(), UTC)


class RealClock(FakeClock):
    """Real time where a FakeClock is taken (`make_floor`): the test's agents and phones run on real timers."""

    def __call__(self) -> float:
        return time.time()

    def advance(self, seconds: float) -> None:
        pass  # real time moves by itself (Floor.staff advances a second between agents)
