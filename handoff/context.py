"""The context an agent gets on every handoff, built from the bot's HandoffDecision."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.dialogue.handoff import HandoffDecision
from handoff.contacts import ContactLookup, OrderLookup
from handoff.model import HandoffContext, IntentScore, TranscriptLine

Redactor = Callable[[str], str]


def _as_is(text: str) -> str:
    return text


async def build_context(call_id: str, decision: HandoffDecision, *, queue: str, language: str,
                        contacts: ContactLookup, now: float, redact: Redactor = _as_is,
                        orders: OrderLookup | None = None) -> HandoffContext:
    """Everything known about the caller: contact record, transcript, intents, slots, IVR path, why.

    Transcript, keys, summary and slot texts go through `redact` before they are stored (in Redis); the
    caller's number stays, as the contact look-up and a callback need it.
    """
    contact = await contacts.by_number(decision.caller_number) if decision.caller_number else None
    recent = await orders.recent_orders(decision.caller_number) if orders and decision.caller_number else ()
    requested_at = decision.created_at or now
    return HandoffContext(
        call_id=call_id, queue=queue, priority=decision.priority, caller_number=decision.caller_number,
        contact=contact, language=language,
        transcript=tuple(_line(t, redact) for t in decision.transcript),
        intents=tuple(IntentScore(str(i.get("intent")), float(i.get("confidence") or 0.0),
                                  float(i.get("timestamp") or 0.0)) for i in decision.intents),
        slots={k: redact(v) if isinstance(v, str) else v for k, v in decision.slots.items()},
        ivr_path=tuple(decision.ivr_path), reason=decision.reason,
        summary=redact(decision.summary) if decision.summary else decision.summary, requested_at=requested_at,
        recent_orders=recent,
    ).waited(now)


def _line(turn: dict[str, Any], redact: Redactor) -> TranscriptLine:
    confidence = turn.get("confidence")
    dtmf = turn.get("dtmf")
    return TranscriptLine(role=str(turn.get("role") or "user"), text=redact(str(turn.get("text") or "")),
                          timestamp=float(turn.get("timestamp") or 0.0), intent=turn.get("intent"),
                          confidence=float(confidence) if confidence is not None else None,
                          dtmf=redact(str(dtmf)) if dtmf is not None else None)
