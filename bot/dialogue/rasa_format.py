"""Our conversation state in Rasa's tracker / domain JSON shapes, and back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.dialogue.state import ConversationState, IntentSeen, Turn
from bot.training_data.model import Domain

RASA_VERSION = "3.6.21"


def domain_to_rasa(domain: Domain) -> dict[str, Any]:
    """The parts of a Rasa domain dict that actions usually read."""
    return {
        "version": "3.1",
        "config": {"store_entities_as_slots": True},
        "session_config": {
            "session_expiration_time": domain.session_config.session_expiration_time,
            "carry_over_slots_to_new_session":
                domain.session_config.carry_over_slots_to_new_session,
        },
        "intents": list(domain.intents),
        "entities": list(domain.entities),
        "slots": {
            name: {"type": slot.type, "initial_value": slot.initial_value,
                   "influence_conversation": slot.influence_conversation,
                   "mappings": [{"type": m.type, **({"entity": m.entity} if m.entity else {})}
                                for m in slot.mappings]}
            for name, slot in domain.slots.items()
        },
        "responses": {
            name: [{"text": v.text, **({"condition": [
                {"type": "slot", "name": n, "value": val} for n, val in v.condition]}
                if v.condition else {})} for v in response.variants]
            for name, response in domain.responses.items()
        },
        "actions": list(domain.actions),
        "forms": {name: {"required_slots": list(form.required_slots)}
                  for name, form in domain.forms.items()},
        "e2e_actions": [],
    }


def tracker_from_state(
    state: ConversationState, latest_message: Mapping[str, Any], *, now: float,
    followup_action: str | None = None,
) -> dict[str, Any]:
    """A Rasa tracker dict (what an action server receives) for this conversation."""
    events: list[dict[str, Any]] = [
        {"event": "action", "timestamp": state.started_at, "name": "action_session_start"},
        {"event": "session_started", "timestamp": state.started_at},
    ]
    for turn in state.transcript:
        if turn.role == "user":
            events.append({
                "event": "user", "timestamp": turn.timestamp, "text": turn.text,
                "parse_data": {"intent": {"name": turn.intent, "confidence": turn.confidence},
                               "entities": [], "text": turn.text},
                "input_channel": state.channel,
            })
        elif turn.role == "bot":
            events.append({"event": "bot", "timestamp": turn.timestamp, "text": turn.text,
                           "data": {}, "metadata": {}})
    slots = dict(state.slots)
    slots.setdefault("requested_slot", state.requested_slot)
    return {
        "sender_id": state.sender_id,
        "conversation_id": state.sender_id,
        "slots": slots,
        "latest_message": dict(latest_message),
        "latest_event_time": now,
        "followup_action": followup_action,
        "paused": state.mode == "handoff",
        "events": events,
        "latest_input_channel": state.channel,
        "active_loop": {"name": state.active_form} if state.active_form else {},
        "latest_action": {"action_name": state.last_action} if state.last_action else {},
        "latest_action_name": state.last_action,
    }


def state_from_tracker(tracker: Mapping[str, Any]) -> ConversationState:
    """Rebuild enough of a conversation state from a Rasa tracker dict to run an action."""
    sender = str(tracker.get("sender_id") or tracker.get("conversation_id") or "unknown")
    slots = dict(tracker.get("slots") or {})
    requested = slots.get("requested_slot")
    loop = tracker.get("active_loop") or {}
    latest_action = tracker.get("latest_action") or {}
    state = ConversationState(
        sender_id=sender,
        channel=str(tracker.get("latest_input_channel") or "rest"),
        slots=slots,
        active_form=loop.get("name") if isinstance(loop, Mapping) else None,
        requested_slot=str(requested) if requested else None,
        last_action=tracker.get("latest_action_name") or latest_action.get("action_name"),
    )
    for event in tracker.get("events") or []:
        kind, stamp = event.get("event"), float(event.get("timestamp") or 0.0)
        if kind == "user":
            intent = (event.get("parse_data") or {}).get("intent") or {}
            name, conf = intent.get("name"), intent.get("confidence")
            state.transcript.append(Turn("user", str(event.get("text") or ""), stamp, name,
                                         float(conf) if conf is not None else None))
            if name:
                state.intents_seen.append(IntentSeen(str(name), float(conf or 0.0), stamp))
        elif kind == "bot":
            state.transcript.append(Turn("bot", str(event.get("text") or ""), stamp))
        elif kind == "session_started" and not state.started_at:
            state.started_at = stamp
    return state
