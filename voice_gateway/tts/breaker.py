"""A circuit breaker for an online engine: after a failure, skip it until a cool-down has passed."""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field


class BreakerState(enum.Enum):
    """closed: use the service; open: skip it; half_open: one trial call after the cool-down."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class BreakerEvent(enum.Enum):
    """What can happen to a breaker."""

    SUCCESS = "success"
    FAILURE = "failure"
    COOLED_DOWN = "cooled_down"


TRANSITIONS: dict[tuple[BreakerState, BreakerEvent], BreakerState] = {
    (BreakerState.CLOSED, BreakerEvent.SUCCESS): BreakerState.CLOSED,
    (BreakerState.CLOSED, BreakerEvent.FAILURE): BreakerState.OPEN,
    (BreakerState.OPEN, BreakerEvent.COOLED_DOWN): BreakerState.HALF_OPEN,
    # A call that was already running when the breaker opened may still finish either way.
    (BreakerState.OPEN, BreakerEvent.SUCCESS): BreakerState.CLOSED,
    (BreakerState.OPEN, BreakerEvent.FAILURE): BreakerState.OPEN,
    (BreakerState.HALF_OPEN, BreakerEvent.SUCCESS): BreakerState.CLOSED,
    (BreakerState.HALF_OPEN, BreakerEvent.FAILURE): BreakerState.OPEN,
}


class IllegalBreakerTransition(RuntimeError):
    """An event the transition table does not allow in the current state."""


@dataclass
class CircuitBreaker:
    """Sans-I/O breaker: ask `allow()` before calling, then report `record_success()` or `record_failure()`."""

    cooldown_s: float = 60.0
    clock: Callable[[], float] = time.monotonic
    state: BreakerState = BreakerState.CLOSED
    opened_at: float = field(default=0.0)
    failures: int = 0

    def _move(self, event: BreakerEvent) -> None:
        try:
            self.state = TRANSITIONS[(self.state, event)]
        except KeyError:
            raise IllegalBreakerTransition(f"{event.value} in state {self.state.value}") from None

    def allow(self) -> bool:
        """True if a call should be tried now (closed, or the cool-down is over: one trial call)."""
        if self.state is BreakerState.OPEN and self.clock() - self.opened_at >= self.cooldown_s:
            self._move(BreakerEvent.COOLED_DOWN)
            return True
        return self.state is BreakerState.CLOSED

    def record_success(self) -> None:
        """The service answered: close the breaker."""
        self._move(BreakerEvent.SUCCESS)
        self.failures = 0

    def record_failure(self) -> None:
        """The service failed: open the breaker and start the cool-down."""
        self._move(BreakerEvent.FAILURE)
        self.failures += 1
        self.opened_at = self.clock()
