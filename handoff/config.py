"""Typed queue configuration: five skill queues by default, each with its strategy, timeouts and hours.

Loaded from the `handoff:` section of the callpilot YAML config (via `Settings.handoff`)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

OverflowAction = Literal["callback", "voicemail", "transfer"]
Strategy = Literal["ringall", "linear", "longest_idle", "fewest_calls", "round_robin", "random"]
STRATEGIES: tuple[str, ...] = ("ringall", "linear", "longest_idle", "fewest_calls", "round_robin", "random")
SKILL_QUEUES: tuple[str, ...] = ("orders", "returns", "tech", "billing", "general")
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def known_zone(value: str) -> str:
    """`value` if it names an IANA time zone; ValueError otherwise."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


Zone = Annotated[str, AfterValidator(known_zone)]


class BusinessHours(BaseModel):
    """Opening hours in a time zone: `{"mon": "09:00-17:00", ...}`; a missing day is closed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: Zone = "UTC"
    days: dict[str, str] = Field(default_factory=dict)


    @field_validator("days")
    @classmethod
    def _valid_days(cls, value: dict[str, str]) -> dict[str, str]:
        for day, span in value.items():
            if day not in WEEKDAYS:
                raise ValueError(f"unknown day {day!r} (use {', '.join(WEEKDAYS)})")
            _span(span)
        return value

    def is_open(self, now: float) -> bool:
        local = datetime.fromtimestamp(now, ZoneInfo(self.timezone))
        span = self.days.get(WEEKDAYS[local.weekday()])
        if span is None:
            return False
        start, end = _span(span)
        return start <= local.time() < end

    def next_opening(self, now: float) -> float | None:
        """When the queue opens next (Unix seconds), within a week; None if never."""
        zone = ZoneInfo(self.timezone)
        local = datetime.fromtimestamp(now, zone)
        for ahead in range(8):
            day = (local + timedelta(days=ahead)).date()
            span = self.days.get(WEEKDAYS[day.weekday()])
            if span is None:
                continue
            opening = datetime.combine(day, _span(span)[0], zone)
            if opening.timestamp() > now:
                return opening.timestamp()
        return None


def _span(text: str) -> tuple[time, time]:
    try:
        start, end = (time.fromisoformat(part.strip()) for part in text.split("-"))
    except ValueError:
        raise ValueError(f"hours must look like '09:00-17:00', got {text!r}") from None
    if end <= start:
        raise ValueError(f"hours end before they start: {text!r}")
    return start, end


class QueueConfig(BaseModel):
    """How one skill queue distributes calls."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy: Strategy = "longest_idle"
    # Timeouts
    ring_timeout_s: float = Field(default=20.0, gt=0)
    max_wait_s: float = Field(default=300.0, gt=0)
    position_interval_s: float = Field(default=30.0, gt=0)
    # Overflow after max_wait_s: a callback at the caller's number, voicemail, or a backup number.
    overflow: OverflowAction = "callback"  # with choices: what happens when the caller presses no key
    overflow_target: str | None = None
    # Offered by keys (1, 2, 3 in this order) after max_wait_s; empty: `overflow` happens at once.
    overflow_choices: tuple[OverflowAction, ...] = ()
    overflow_choice_timeout_s: float = Field(default=8.0, gt=0)  # no key this long after the offer: the default
    hours: BusinessHours | None = None  # None: always open
    agent_order: tuple[str, ...] = ()  # for linear: agent ids in ring order (others after, by name)
    seed: int | None = None  # for random: a fixed seed makes the choice reproducible
    average_handle_s: float = Field(default=180.0, gt=0)  # for the expected wait before there is history
    closed: bool = False  # closed by a supervisor (a holiday): callers hear it is closed, whatever the hours

    def is_open(self, now: float) -> bool:
        """Open at `now`: not closed by a supervisor and within its hours (no hours: always)."""
        return not self.closed and (self.hours.is_open(now) if self.hours else True)

    def next_opening(self, now: float) -> float | None:
        """When a queue that is shut at `now` opens (None: not known, e.g. closed by a supervisor)."""
        if self.closed or self.hours is None:
            return None
        return self.hours.next_opening(now)

    @model_validator(mode="after")
    def _transfer_needs_target(self) -> QueueConfig:
        if "transfer" in (self.overflow, *self.overflow_choices) and not self.overflow_target:
            raise ValueError("overflow: transfer needs overflow_target (the backup number)")
        if len(set(self.overflow_choices)) != len(self.overflow_choices):
            raise ValueError(f"overflow_choices lists an action twice: {list(self.overflow_choices)}")
        return self


class Disposition(BaseModel):
    """A wrap-up code the agent picks (`code` goes into the call's record, `label` is what the desk shows)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(pattern=r"^[a-z0-9_]{1,40}$")
    label: str = Field(min_length=1, max_length=80)


DEFAULT_DISPOSITIONS: tuple[Disposition, ...] = tuple(Disposition(code=c, label=t) for c, t in (
    ("resolved", "Resolved"), ("follow_up", "Follow-up needed"), ("escalated", "Escalated"),
    ("callback", "Callback promised"), ("wrong_queue", "Wrong queue"), ("no_answer", "Caller gone")))


class Threshold(BaseModel):
    """A wallboard number turns amber at `amber` and red at `red` (for rates where less is worse, `below`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    amber: float
    red: float
    below: bool = False  # true: the number is bad when it falls below (service level)

    @model_validator(mode="after")
    def _ordered(self) -> Threshold:
        if (self.red > self.amber) if self.below else (self.red < self.amber):
            raise ValueError(f"red ({self.red}) must be {'below' if self.below else 'above'} amber ({self.amber})")
        return self


def _default_thresholds() -> dict[str, Threshold]:
    return {"waiting": Threshold(amber=3, red=6), "longest_wait_s": Threshold(amber=60, red=120),
            "service_level": Threshold(amber=0.8, red=0.6, below=True),
            "abandoned": Threshold(amber=3, red=10)}


class HandoffConfig(BaseModel):
    """All queues plus the timings of presence and of the router."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    queues: dict[str, QueueConfig] = Field(default_factory=lambda: {q: QueueConfig() for q in SKILL_QUEUES})
    default_queue: str = "general"
    # Presence and routing
    heartbeat_ttl_s: float = Field(default=30.0, gt=0)
    router_lease_s: float = Field(default=10.0, gt=0)  # a router silent this long loses its calls to another
    tick_s: float = Field(default=0.25, gt=0)
    resync_s: float = Field(default=0.2, ge=0)  # a router re-reads all its calls and agents this often
    session_ttl_s: int = Field(default=3600, gt=0)
    record_ttl_s: int = Field(default=86400, gt=0)  # finished calls stay readable this long
    # Where the agent directory lives: "auto" is Redis when `redis_url` is set (every process and machine sees
    # the same agents), else the file; "file" keeps the file even with Redis (one machine, a shared volume).
    agent_store: Literal["auto", "file", "redis"] = "auto"
    agents_file: str | None = None  # default: <state_dir>/agents.json; copied into an empty Redis directory
    handle_time_weight: float = Field(default=0.3, gt=0, le=1)  # of the newest call in the handle-time average
    # Whose midnight starts an agent's day (calls today, occupancy on the supervisor's floor).
    timezone: Zone = "UTC"
    # The wrap-up codes the desk offers; an agent must pick one of them (a call taken on a phone gets "phone").
    dispositions: tuple[Disposition, ...] = Field(default=DEFAULT_DISPOSITIONS, min_length=1)
    # The supervisor's wallboard: when a queue's numbers turn amber and red.
    wallboard: dict[str, Threshold] = Field(default_factory=_default_thresholds)

    @field_validator("wallboard", mode="before")
    @classmethod
    def _known_numbers(cls, value: object) -> object:
        if not isinstance(value, dict):
            return value
        unknown = sorted(set(value) - set(_default_thresholds()))
        if unknown:
            raise ValueError(f"no wallboard number {', '.join(unknown)} (numbers: {', '.join(_default_thresholds())})")
        return {**_default_thresholds(), **value}


    @field_validator("dispositions")
    @classmethod
    def _unique_codes(cls, value: tuple[Disposition, ...]) -> tuple[Disposition, ...]:
        codes = [d.code for d in value]
        if len(set(codes)) != len(codes):
            raise ValueError(f"a disposition code is listed twice: {codes}")
        return value

    @field_validator("queues", mode="before")
    @classmethod
    def _keep_default_queues(cls, value: object) -> object:
        """Configured queues add to (or change) the five skill queues; `null` removes one."""
        if not isinstance(value, dict):
            return value
        merged: dict[str, object] = {q: {} for q in SKILL_QUEUES}
        merged.update(value)
        return {name: conf for name, conf in merged.items() if conf is not None}

    @model_validator(mode="after")
    def _default_queue_exists(self) -> HandoffConfig:
        if self.default_queue not in self.queues:
            raise ValueError(f"default_queue {self.default_queue!r} is not one of the queues "
                             f"({', '.join(sorted(self.queues))})")
        return self

    def queue(self, name: str) -> QueueConfig:
        return self.queues[name]

    def queue_for(self, skill: str) -> str:
        """The queue a skill maps to (unknown skills go to the default queue)."""
        return skill if skill in self.queues else self.default_queue
