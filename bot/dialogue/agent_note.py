"""The note an agent reads when a call is handed over: written like a colleague's, not like a log.

Who is calling, what they want now (in their own words where it matters), what the bot already did or
why it stopped, and what is left - one to three sentences, no intent or slot names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.dialogue.agent_note_zh import write_note_zh
from bot.dialogue.state import ConversationState

# What a caller with this intent needs, as an agent would put it; {order} and {repair} become "order 48215"
# or "their order", {product} and {city} " for the dryer", " in Boston" when known, else nothing.
TOPICS: dict[str, str] = {
    "check_order_status": "where {order} is",
    "delivery_time": "when {order} will be delivered",
    "change_delivery_address": "changing the delivery address of {order}",
    "cancel_order": "cancelling {order}",
    "return_policy": "returning an item{product}",
    "refund_status": "a refund for {order}",
    "warranty_info": "the warranty{product}",
    "product_info": "product information{product}",
    "opening_hours": "opening hours",
    "store_location": "finding a store{city}",
    "payment_methods": "ways to pay",
    "invoice_request": "the invoice for {order}",
    "track_repair": "the status of {repair}",
    "book_installation": "booking an installation{product}",
    "account_help": "their online account",
    "complaint": "a complaint",
    "technical_fault": "a fault{product_with}",
    "billing_dispute": "a disputed charge",
}
PEOPLE_INTENTS = ("talk_to_human", "request_human", "human_handoff")
_NOT_TOPICS = frozenset({"greet", "goodbye", "affirm", "deny", "thank", "repeat", "nlu_fallback",
                         "out_of_scope", *PEOPLE_INTENTS})
SLOT_LABELS: dict[str, str] = {
    "order_number": "order number", "repair_number": "repair number", "email": "e-mail address",
    "city": "city", "product": "product", "date": "date", "verification_answer": "security answer",
}
REASONS: dict[str, str] = {
    "caller_asked": "they asked for a person",
    "intent_needs_agent": "this needs a person",
    "repeated_fallback": "the bot could not understand them twice in a row",
    "form_failed": "they could not give a valid {slot} twice",
    "configured_rule": "a handoff rule sends these calls to an agent",
    "ivr_request": "they chose an agent in the phone menu",
    "action_request": "the bot could not finish the request",
}


def _fill(template: str, slots: Mapping[str, Any]) -> str:
    """`where {order} is` -> `where order 48215 is` (or `where their order is` when it is not known)."""
    return template.format(
        order=f"order {slots['order_number']}" if slots.get("order_number") else "their order",
        repair=f"repair {slots['repair_number']}" if slots.get("repair_number") else "their repair",
        product=f" for the {slots['product']}" if slots.get("product") else "",
        product_with=f" with the {slots['product']}" if slots.get("product") else "",
        city=f" in {slots['city']}" if slots.get("city") else "",
    )


def _quote(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def write_note(state: ConversationState, *, reason: str, skill: str) -> str:
    """One to three sentences for the agent (`skill` names the team the call goes to)."""
    slots = state.filled_slots()
    who = f"Caller {state.caller_number}" if state.caller_number else "An anonymous caller"
    if state.verified:
        who += " (identity checked)"
    topics = [i.intent for i in state.intents_seen if i.intent in TOPICS]
    now = topics[-1] if topics else None
    user_turns = [t for t in state.transcript if t.role == "user" and t.text]
    words = next((t.text for t in reversed(user_turns) if t.intent == now), None) if now else None
    words = words or (user_turns[-1].text if user_turns else None)
    if state.language == "zh":  # a Chinese call: the agent reads the note in Chinese
        quoted = _quote(words) if words else None
        return write_note_zh(state, reason=reason, skill=skill, topics=topics, now=now, words=quoted)
    wants = f"needs help with {_fill(TOPICS[now], slots)}" if now else "did not say what they need"
    first = f'{who} {wants}' + (f': "{_quote(words)}".' if words else ".")
    keys = [t.dtmf for t in state.transcript if t.dtmf]
    if state.ivr_path or keys:
        first = first[:-1] + f" (keypad: {' > '.join(state.ivr_path) or ' '.join(k for k in keys if k)})."
    earlier = []
    for intent in topics[:-1]:
        done = _fill(TOPICS[intent], slots)
        if intent != now and done not in earlier:
            earlier.append(done)
    why = REASONS.get(reason, "the bot handed over").format(
        slot=SLOT_LABELS.get(state.requested_slot or "", "answer"))
    second = (f"The bot already helped with {', '.join(earlier)}; it handed over because {why}."
              if earlier else f"The bot handed over because {why}.")
    known = [f"{SLOT_LABELS[name]} {value}" for name, value in sorted(slots.items())
             if name in SLOT_LABELS and name != "verification_answer"]
    left = f"Left for you: {_fill(TOPICS[now], slots)}" if now else "Left for you: find out what they need"
    third = left + (f" (known: {', '.join(known)})." if known else ".") + f" Queue: {skill}."
    return " ".join((first, second, third))
