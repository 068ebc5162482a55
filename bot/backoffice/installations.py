"""The installers' calendar: which days can still take a job."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

from bot.backoffice.results import InstallationOutcome


class InstallationCalendar:
    """Jobs booked per day; installers need a day's notice, never work Sundays, do a few a day."""

    def __init__(self, today: date, *, jobs_per_day: int = 3) -> None:
        self.today = today
        self.jobs_per_day = jobs_per_day
        self._booked: Counter[date] = Counter()

    def refusal(self, day: date) -> InstallationOutcome | None:
        """Why `day` cannot be booked, or None if it can."""
        if day <= self.today:
            return InstallationOutcome.DATE_TOO_SOON
        if day.weekday() == 6:
            return InstallationOutcome.NO_INSTALLS_ON_SUNDAY
        if self._booked[day] >= self.jobs_per_day:
            return InstallationOutcome.FULLY_BOOKED
        return None

    def next_free(self, day: date) -> date:
        """The first bookable day after `day` (and after today)."""
        candidate = max(day, self.today) + timedelta(days=1)
        while self.refusal(candidate) is not None:
            candidate += timedelta(days=1)
        return candidate

    def take(self, day: date) -> None:
        """Book one job on `day`; raises ValueError if the day cannot take it."""
        refusal = self.refusal(day)
        if refusal is not None:
            raise ValueError(f"cannot book {day}: {refusal}")
        self._booked[day] += 1

    def jobs_on(self, day: date) -> int:
        return self._booked[day]
