"""The typed settings of operations: webhook subscriptions and alert rules (fields of `callpilot.Settings`)."""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

WebhookEvent = Literal["call.started", "call.ended", "handoff.requested", "alert.fired", "alert.resolved",
                       "ticket.created", "ticket.updated"]
WEBHOOK_EVENTS: tuple[WebhookEvent, ...] = get_args(WebhookEvent)
AlertMetric = Literal[
    "answer_rate",
    "abandonment_rate",
    "service_level",
    "containment_rate",
    "average_speed_of_answer_s",
    "longest_wait_s",
]


class WebhookTarget(BaseModel):
    """A subscriber: POSTs of the listed events, signed with `secret`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(pattern=r"^https?://")
    secret: str = Field(min_length=8)
    events: tuple[WebhookEvent, ...] = WEBHOOK_EVENTS


class AlertRule(BaseModel):
    """Fire when `metric` crosses `fire` (below or above); resolve only once it is past `clear` the other way.

    The gap between `fire` and `clear` is the hysteresis that stops an alert flapping around one threshold.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[a-z0-9_.-]+$")
    metric: AlertMetric
    when: Literal["below", "above"]
    fire: float
    clear: float
    window_s: int = Field(default=3600, ge=60)  # the rate is computed over the calls of the last window_s seconds
    # Fewer calls than this behind the value (e.g. offered calls for answer_rate) is "no data": one abandoned call
    # at night is not a 0 % answer rate. Default: 20 for rates and averages, 0 for longest_wait_s (a live gauge).
    min_calls: int = Field(default=20, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _default_min_calls(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("min_calls") is None and data.get("metric") == "longest_wait_s":
            return {**data, "min_calls": 0}
        return data

    @model_validator(mode="after")
    def _clear_is_past_fire(self) -> AlertRule:
        if self.when == "below" and self.clear < self.fire:
            raise ValueError(f"alert {self.name}: fires below {self.fire}, so clear must be >= fire")
        if self.when == "above" and self.clear > self.fire:
            raise ValueError(f"alert {self.name}: fires above {self.fire}, so clear must be <= fire")
        return self


DEFAULT_ALERT_RULES = (
    AlertRule(name="answer_rate_low", metric="answer_rate", when="below", fire=0.80, clear=0.85),
    AlertRule(name="longest_wait_high", metric="longest_wait_s", when="above", fire=60, clear=30),
)
