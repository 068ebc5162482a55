"""The context an agent gets on every handoff, built from the bot's HandoffDecision."""

from __future__ import annotations

from typing import Any

from bot.dialogue.handoff import HandoffDecision
from handoff.contacts import ContactLookup
from handoff.model import HandoffContext, IntentScore, TranscriptLine


async def build_context(call_id: str, decision: HandoffDecision, *, queue: str, language: str,
                        contacts: ContactLookup, now: float) -> HandoffContext:
    """Everything known about the caller: contact record, transcript, intents, slots, IVR path, why."""
    contact = await contacts.by_number(decision.caller_number) if decision.caller_number else None
    requested_at = decision.created_at or now
    return HandoffContext(
        call_id=call_id, queue=queue, priority=decision.priority, caller_number=decision.caller_number,
        contact=contact, language=language,
        transcript=tuple(_line(t) for t in decision.transcript),
        intents=tuple(IntentScore(str(i.get("intent")), float(i.get("confidence") or 0.0),
                                  float(i.get("timestamp") or 0.0)) for i in decision.intents),
        slots=dict(decision.slots), ivr_path=tuple(decision.ivr_path), reason=decision.reason,
        summary=decision.summary, requested_at=requested_at,
    ).waited(now)


def _line(turn: dict[str, Any]) -> TranscriptLine:
    confidence = turn.get("confidence")
    return TranscriptLine(role=str(turn.get("role") or "user"), text=str(turn.get("text") or ""),
                          timestamp=float(turn.get("timestamp") or 0.0), intent=turn.get("intent"),
                          confidence=float(confidence) if confidence is not None else None,
                          dtmf=turn.get("dtmf"))
