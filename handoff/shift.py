"""An agent's day on the floor: calls taken, time busy (on a call or wrapping up), away, and signed in, kept per day
(in the floor's time zone, `handoff.timezone`) in a Redis hash per agent, so every process's supervisor page shows
the same "calls today" and occupancy.

Occupancy is the standard contact-centre figure: busy time / staffed time, staffed being signed in less away
(breaks). Each state's time is added when the agent leaves it (`tally`); the state they are in now is added live
when the page reads it (`shift_today`). Time is counted from the day's midnight, so a state that spans midnight
counts only its part of today.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from handoff.model import AgentStatus

BUSY = frozenset({AgentStatus.ON_CALL, AgentStatus.WRAP_UP})
MIN_STAFFED_S = 60.0  # less signed-in time than this: occupancy is not known yet
DAY_TTL_S = 8 * 86400


def day_start(now: float, zone: str) -> tuple[str, float]:
    """The day's name (ISO date) and its midnight (Unix seconds) in `zone`."""
    local = datetime.fromtimestamp(now, ZoneInfo(zone))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return local.date().isoformat(), midnight.timestamp()


def tally(status: AgentStatus, since: float, login_at: float, new: AgentStatus, event: str, now: float,
          midnight: float) -> dict[str, float]:
    """What one move adds to today's hash: the time of the state left, signed-in time at sign-out, a call."""
    added: dict[str, float] = {}
    elapsed = max(0.0, now - max(since, midnight)) if since else 0.0
    if new is not status:
        if status in BUSY:
            added["busy_s"] = elapsed
        elif status is AgentStatus.AWAY:
            added["away_s"] = elapsed
    if new is AgentStatus.OFFLINE and status is not AgentStatus.OFFLINE and login_at:
        added["signed_in_s"] = max(0.0, now - max(login_at, midnight))
    if event == "accept":
        added["calls"] = 1
    return added


@dataclass(frozen=True)
class ShiftToday:
    calls: int
    busy_s: float
    away_s: float
    signed_in_s: float

    @property
    def occupancy(self) -> float | None:
        staffed = self.signed_in_s - self.away_s
        return round(min(1.0, self.busy_s / staffed), 3) if staffed >= MIN_STAFFED_S else None


def shift_today(stored: Mapping[Any, Any], status: AgentStatus, since: float, login_at: float, now: float,
                midnight: float) -> ShiftToday:
    """Today's numbers: what the hash holds plus the state the agent is in now."""
    def number(name: str) -> float:
        value = stored.get(name)
        return float(value) if value is not None else 0.0

    current = max(0.0, now - max(since, midnight)) if since else 0.0
    online = status is not AgentStatus.OFFLINE
    return ShiftToday(
        calls=int(number("calls")),
        busy_s=number("busy_s") + (current if status in BUSY else 0.0),
        away_s=number("away_s") + (current if status is AgentStatus.AWAY else 0.0),
        signed_in_s=number("signed_in_s") + (max(0.0, now - max(login_at, midnight)) if online and login_at else 0.0),
    )
