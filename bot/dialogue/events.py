"""Typed events that actions return, and their Rasa action-server JSON form."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SlotSet:
    name: str
    value: Any


@dataclass(frozen=True)
class BotMessage:
    """A literal text for the caller."""

    text: str


@dataclass(frozen=True)
class UtterResponse:
    """Say a domain response (utter_...), with optional extra template values."""

    name: str
    values: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class HandoffRequested:
    reason: str
    skill: str | None = None


@dataclass(frozen=True)
class FollowupAction:
    name: str


@dataclass(frozen=True)
class ActiveLoop:
    """Activate a form (name) or deactivate the active one (None)."""

    name: str | None


@dataclass(frozen=True)
class RetrySlot:
    """The slot's value was wrong (e.g. no such order): clear it and collect it again.

    Counts as a form failure; with `ask=False` the action's own message is the question.
    """

    slot: str
    ask: bool = True


@dataclass(frozen=True)
class AskConfirmation:
    """Ask a yes/no question; `affirm` then runs `action` again, confirmed."""

    action: str
    prompt: str
    on_deny: str | None = None


@dataclass(frozen=True)
class CallerVerified:
    """The caller proved to be this customer (`method`: caller_number, postcode, phone_last4)."""

    customer_id: str
    method: str


@dataclass(frozen=True)
class EndConversation:
    """The bot hangs up after its messages."""


@dataclass(frozen=True)
class AllSlotsReset:
    pass


# Rasa has no handoff event: a handoff travels as this slot being set.
HANDOFF_SLOT = "handoff_reason"

Event = (
    SlotSet | BotMessage | UtterResponse | HandoffRequested | FollowupAction | ActiveLoop
    | RetrySlot | AskConfirmation | EndConversation | AllSlotsReset | CallerVerified
)


def event_to_rasa(event: Event, timestamp: float | None = None) -> dict[str, Any] | None:
    """Rasa SDK event dict for an event (None for bot output, which goes to `responses`)."""
    if isinstance(event, SlotSet):
        return {"event": "slot", "timestamp": timestamp, "name": event.name, "value": event.value}
    if isinstance(event, RetrySlot):
        return {"event": "slot", "timestamp": timestamp, "name": event.slot, "value": None}
    if isinstance(event, FollowupAction):
        return {"event": "followup", "timestamp": timestamp, "name": event.name}
    if isinstance(event, ActiveLoop):
        return {"event": "active_loop", "timestamp": timestamp, "name": event.name}
    if isinstance(event, AllSlotsReset):
        return {"event": "reset_slots", "timestamp": timestamp}
    if isinstance(event, EndConversation):
        return {"event": "action", "timestamp": timestamp, "name": "action_hangup",
                "policy": None, "confidence": None}
    if isinstance(event, HandoffRequested):
        return {"event": "slot", "timestamp": timestamp, "name": HANDOFF_SLOT,
                "value": event.reason}
    return None


def response_to_rasa(event: Event) -> dict[str, Any] | None:
    """Rasa SDK dispatcher message for bot output (None for other events)."""
    base: dict[str, Any] = {"text": None, "buttons": [], "elements": [], "custom": {},
                            "template": None, "response": None, "image": None,
                            "attachment": None}
    if isinstance(event, BotMessage):
        return {**base, "text": event.text}
    if isinstance(event, AskConfirmation):
        return {**base, "text": event.prompt}
    if isinstance(event, UtterResponse):
        return {**base, "template": event.name, "response": event.name, **dict(event.values)}
    return None


def events_from_rasa(events: list[dict[str, Any]], responses: list[dict[str, Any]]) -> list[Event]:
    """Our events from an action server's `{"events", "responses"}` answer."""
    out: list[Event] = []
    for message in responses:
        name = message.get("response") or message.get("template")
        if message.get("text"):
            out.append(BotMessage(str(message["text"])))
        elif name:
            extra = tuple(
                (k, v) for k, v in message.items()
                if k not in {"response", "template", "text", "buttons", "elements", "custom",
                             "image", "attachment"} and v is not None
            )
            out.append(UtterResponse(str(name), extra))
    for raw in events:
        kind = raw.get("event")
        if kind == "slot" and raw.get("name") == HANDOFF_SLOT and raw.get("value"):
            out.append(HandoffRequested(str(raw["value"])))
        elif kind == "slot":
            out.append(SlotSet(str(raw["name"]), raw.get("value")))
        elif kind == "followup":
            out.append(FollowupAction(str(raw["name"])))
        elif kind in ("active_loop", "form"):
            name = raw.get("name")
            out.append(ActiveLoop(str(name) if name else None))
        elif kind == "reset_slots":
            out.append(AllSlotsReset())
        elif kind == "bot" and raw.get("text"):
            out.append(BotMessage(str(raw["text"])))
    return out
