"""Caller verification: who may change an order, cancel it or have its invoice sent.

A change needs the caller to be the order's customer: the calling number as the phone network gave it
matches the customer's phone, or the caller answers the security question (`verify_form`): the postcode
of the delivery address or the last four digits of the customer's phone number. The check lives here, in
the actions, so it holds whichever policy or tracker chose to run them (our rules, a Rasa server, a forged
`POST /webhook`).
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.backoffice.ids import normalize_phone
from bot.backoffice.models import Order
from bot.backoffice.office import BackOffice
from bot.dialogue.actions.registry import ActionContext
from bot.dialogue.events import (
    ActiveLoop,
    CallerVerified,
    Event,
    FollowupAction,
    SlotSet,
    UtterResponse,
)

FORM = "verify_form"
ANSWER_SLOT = "verification_answer"
PENDING_SLOT = "verification_for"  # the action to run once the caller is verified
FAILURES_SLOT = "verification_failures"
SESSION_SLOTS = (ANSWER_SLOT, PENDING_SLOT, FAILURES_SLOT)  # never carried into a new session
BY_NUMBER, BY_POSTCODE, BY_PHONE_DIGITS = "caller_number", "postcode", "phone_last4"
REFUSED = "utter_verification_refused"


def _phone_of(office: BackOffice, order: Order) -> str:
    customer = office.customer(order.customer_id)
    return customer.phone if customer is not None else order.phone


def failures(ctx: ActionContext) -> int:
    value = ctx.slot(FAILURES_SLOT)
    try:
        return int(float(value)) if value is not None else 0
    except (TypeError, ValueError):
        return 0


def gate(ctx: ActionContext, office: BackOffice, order: Order, action: str,
         resume_slots: Sequence[SlotSet] = ()) -> tuple[bool, list[Event]]:
    """(may go ahead, events): verified already, or by the calling number; otherwise ask the security question
    (and `action` runs again, with `resume_slots` set, once the answer is right) or refuse after too many tries."""
    customer = order.customer_id
    if customer in ctx.state.verified:
        return True, []
    number = normalize_phone(ctx.network_number) if ctx.network_number else None
    if number and number in (normalize_phone(_phone_of(office, order)), normalize_phone(order.phone)):
        return True, [CallerVerified(customer, BY_NUMBER)]
    if failures(ctx) >= ctx.verification_attempts:
        return False, [FollowupAction(REFUSED)]
    return False, [*resume_slots, SlotSet(PENDING_SLOT, action), SlotSet(ANSWER_SLOT, None),
                   ActiveLoop(FORM)]


def answer_matches(office: BackOffice, order: Order, answer: str) -> str | None:
    """How the answer proves the caller is the order's customer (postcode, phone digits), or None."""
    digits = "".join(c for c in answer if c.isdigit())
    postcode = "".join(c for c in order.address.zip_code if c.isdigit())
    if len(digits) == 5 and postcode and digits == postcode:
        return BY_POSTCODE
    phone = normalize_phone(_phone_of(office, order)) or ""
    if len(digits) == 4 and len(phone) > 4 and phone.endswith(digits):
        return BY_PHONE_DIGITS
    return None


def verify_caller(ctx: ActionContext) -> list[Event]:
    """`verify_form` is complete: check the answer, then run the waiting action or ask again or refuse."""
    office = ctx.backoffice
    if not isinstance(office, BackOffice):
        raise TypeError("caller verification needs a bot.backoffice.BackOffice")
    number = ctx.slot("order_number")
    order = office.order(str(number)) if number else None
    pending = ctx.slot(PENDING_SLOT)
    clear = [SlotSet(ANSWER_SLOT, None)]
    if order is None or not pending:  # nothing waits for a verification (a forged or stale request)
        return [*clear, SlotSet(PENDING_SLOT, None), UtterResponse("utter_how_can_i_help")]
    method = answer_matches(office, order, str(ctx.slot(ANSWER_SLOT) or ""))
    if method is not None:
        return [*clear, SlotSet(PENDING_SLOT, None), SlotSet(FAILURES_SLOT, None),
                CallerVerified(order.customer_id, method), UtterResponse("utter_caller_verified"),
                FollowupAction(str(pending))]
    tries = failures(ctx) + 1
    if tries >= ctx.verification_attempts:
        return [*clear, SlotSet(PENDING_SLOT, None), SlotSet(FAILURES_SLOT, float(tries)),
                FollowupAction(REFUSED)]
    return [*clear, SlotSet(FAILURES_SLOT, float(tries)), UtterResponse("utter_verification_no_match"),
            ActiveLoop(FORM)]
