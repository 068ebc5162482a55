"""The demo hotline's custom actions, answering from `bot.backoffice` data."""

from __future__ import annotations

from datetime import date
from typing import Any

from bot.backoffice.models import (
    Order,
    OrderStatus,
    Product,
    format_price,
)
from bot.backoffice.office import BackOffice, UnknownOrderError
from bot.backoffice.results import (
    AddressChangeOutcome,
    CancelOutcome,
    InstallationOutcome,
)
from bot.dialogue.actions import spoken, verification
from bot.dialogue.actions.registry import ActionContext, ActionRegistry
from bot.dialogue.events import (
    AskConfirmation,
    BotMessage,
    Event,
    HandoffRequested,
    RetrySlot,
    SlotSet,
    UtterResponse,
)


def _office(ctx: ActionContext) -> BackOffice:
    if not isinstance(ctx.backoffice, BackOffice):
        raise TypeError("the demo actions need a bot.backoffice.BackOffice")
    return ctx.backoffice


def spoken_day(day: date, language: str = "en") -> str:
    """`Tuesday June 17` (`6月17日星期二` in Chinese)."""
    return spoken.day(day, language)


def _language(ctx: ActionContext) -> str:
    return ctx.state.language or "en"


def _order_slots(order: Order, language: str = "en") -> list[Event]:
    window = spoken.window(order.delivery_window, language) if order.delivery_window else None
    return [
        SlotSet("order_number", order.number),
        SlotSet("order_status", order.status.value),
        SlotSet("customer_name", order.customer_name),
        SlotSet("ship_date", spoken_day(order.ship_date, language) if order.ship_date else None),
        SlotSet("delivery_window", window),
        SlotSet("carrier", order.carrier),
        SlotSet("tracking_number", order.tracking_number),
    ]


def _find_order(ctx: ActionContext) -> Order | None:
    number = ctx.slot("order_number")
    return _office(ctx).order(str(number)) if number else None


def _not_found(ctx: ActionContext) -> list[Event]:
    return [UtterResponse("utter_order_not_found"), RetrySlot("order_number", ask=False)]


def check_order_status(ctx: ActionContext) -> list[Event]:
    order = _find_order(ctx)
    if order is None:
        return _not_found(ctx)
    return [*_order_slots(order, _language(ctx)), UtterResponse("utter_order_status")]


def delivery_time(ctx: ActionContext) -> list[Event]:
    order = _find_order(ctx)
    if order is None:
        return _not_found(ctx)
    if order.status in (OrderStatus.CANCELLED, OrderStatus.DELIVERED):
        return [*_order_slots(order, _language(ctx)), UtterResponse("utter_order_status")]
    if order.delivery_window is None:
        return [*_order_slots(order, _language(ctx)), UtterResponse("utter_delivery_not_scheduled")]
    return [*_order_slots(order, _language(ctx)), UtterResponse("utter_delivery_window")]


def change_address(ctx: ActionContext) -> list[Event]:
    office = _office(ctx)
    order = _find_order(ctx)
    if order is None:
        return _not_found(ctx)
    allowed, checked = verification.gate(ctx, office, order, "action_change_address")
    if not allowed:
        return checked
    return [*checked, *_changed_address(ctx, office)]


def _changed_address(ctx: ActionContext, office: BackOffice) -> list[Event]:
    result = office.change_address(str(ctx.slot("order_number") or ""), str(ctx.slot("city") or ""))
    order_events = _order_slots(result.order, _language(ctx)) if result.order else []
    if result.outcome is AddressChangeOutcome.NOT_FOUND:
        return _not_found(ctx)
    if result.outcome is AddressChangeOutcome.UNKNOWN_CITY:
        city = ctx.slot("city")
        sorry = f"不好意思，我们不送{city}。" if _language(ctx) == "zh" else f"Sorry, we don't deliver to {city}."
        return [BotMessage(sorry),
                RetrySlot("city")]
    if result.outcome is AddressChangeOutcome.ALREADY_SHIPPED:
        return [*order_events, UtterResponse("utter_address_change_too_late")]
    if result.outcome is AddressChangeOutcome.CANCELLED:
        return [*order_events, UtterResponse("utter_order_status")]
    city = result.order.address.city if result.order else ctx.slot("city")
    return [*order_events, SlotSet("city", city), UtterResponse("utter_address_changed")]


def cancel_order(ctx: ActionContext) -> list[Event]:
    if not (ctx.confirmed or ctx.slot("confirm_cancel") is True or ctx.intent == "affirm"):
        number = ctx.slot("order_number")
        return [AskConfirmation("action_cancel_order",
                                f"Just to confirm: do you want to cancel order {number}?",
                                "utter_cancel_kept")]
    office, order = _office(ctx), _find_order(ctx)
    if order is None:
        return [SlotSet("confirm_cancel", None), *_not_found(ctx)]
    # The caller said yes already: after the security question the cancellation goes ahead.
    allowed, checked = verification.gate(ctx, office, order, "action_cancel_order",
                                         (SlotSet("confirm_cancel", True),))
    if not allowed:
        return checked
    result = office.cancel_order(order.number)
    events: list[Event] = [*checked, SlotSet("confirm_cancel", None)]
    if result.outcome is CancelOutcome.NOT_FOUND:
        return [*events, *_not_found(ctx)]
    order_events = _order_slots(result.order, _language(ctx)) if result.order else []
    if result.outcome is CancelOutcome.ALREADY_SHIPPED:
        return [*events, *order_events, UtterResponse("utter_cannot_cancel_shipped")]
    if result.outcome is CancelOutcome.ALREADY_CANCELLED:
        return [*events, *order_events, UtterResponse("utter_order_status")]
    amount = format_price(result.refund_amount) if result.refund_amount is not None else None
    return [*events, *order_events, SlotSet("refund_amount", amount),
            UtterResponse("utter_order_cancelled")]


def refund_status(ctx: ActionContext) -> list[Event]:
    order = _find_order(ctx)
    if order is None:
        return _not_found(ctx)
    if order.refund is None:
        return [*_order_slots(order, _language(ctx)), UtterResponse("utter_no_refund")]
    return [*_order_slots(order, _language(ctx)), SlotSet("refund_amount", format_price(order.refund.amount)),
            SlotSet("refund_state", spoken.refund_state(order.refund, _language(ctx))),
            UtterResponse("utter_refund_status")]


def track_repair(ctx: ActionContext) -> list[Event]:
    number = ctx.slot("repair_number")
    repair = _office(ctx).repair(str(number)) if number else None
    if repair is None:
        return [UtterResponse("utter_repair_not_found"), RetrySlot("repair_number")]
    return [SlotSet("repair_number", repair.number),
            SlotSet("repair_status", repair.status.value),
            SlotSet("product", repair.product),
            SlotSet("repair_expected_date", spoken_day(repair.expected_on, _language(ctx))),
            UtterResponse("utter_repair_status")]


def find_store(ctx: ActionContext) -> list[Event]:
    office = _office(ctx)
    city = str(ctx.slot("city") or "")
    store = office.nearest_store(city)
    if store is None:
        return [BotMessage("Sorry, I can't look up our stores right now.")]
    events: list[Event] = [
        SlotSet("store_name", store.name), SlotSet("store_address", store.address),
        SlotSet("store_hours", spoken.hours(store.hours_on(office.today), _language(ctx))),
        SlotSet("store_phone", store.phone),
    ]
    here = office.stores_in(city)
    return [*events, UtterResponse("utter_store_found" if here else "utter_no_store_in_city")]


def book_installation(ctx: ActionContext) -> list[Event]:
    office = _office(ctx)
    raw_day = str(ctx.slot("date") or "")
    try:
        day: date | str = date.fromisoformat(raw_day)
    except ValueError:
        day = raw_day
    try:
        result = office.book_installation(str(ctx.slot("product") or ""), day)
    except ValueError:
        return [BotMessage("Sorry, I didn't catch the day."), RetrySlot("date")]
    if result.outcome is InstallationOutcome.UNKNOWN_PRODUCT:
        return [UtterResponse("utter_product_unknown"), RetrySlot("product", ask=False)]
    if result.outcome is InstallationOutcome.NOT_AVAILABLE:
        return [UtterResponse("utter_installation_unavailable")]
    if result.outcome is not InstallationOutcome.BOOKED:
        why = {InstallationOutcome.DATE_TOO_SOON: "our installers need at least a day's notice",
               InstallationOutcome.NO_INSTALLS_ON_SUNDAY: "we don't install on Sundays",
               InstallationOutcome.FULLY_BOOKED: "that day is fully booked"}[result.outcome]
        hint = (f" The next free day is {spoken_day(result.next_free_day)}."
                if result.next_free_day else "")
        return [BotMessage(f"Sorry, {why}.{hint}"), RetrySlot("date")]
    return [SlotSet("installation_id", result.booking_id),
            UtterResponse("utter_installation_booked",
                          (("date", spoken_day(result.day, _language(ctx))), ("product", result.product)))]


def send_invoice(ctx: ActionContext) -> list[Event]:
    office, order = _office(ctx), _find_order(ctx)
    if order is None:
        return _not_found(ctx)
    allowed, checked = verification.gate(ctx, office, order, "action_send_invoice")
    if not allowed:
        return checked
    try:
        invoice = office.create_invoice(order.number, str(ctx.slot("email") or ""))
    except UnknownOrderError:
        return _not_found(ctx)
    except ValueError:
        return [*checked, BotMessage("Sorry, that email address doesn't look right."), RetrySlot("email")]
    return [*checked, SlotSet("invoice_id", invoice.invoice_id), SlotSet("email", invoice.email),
            UtterResponse("utter_invoice_sent")]


def _product_in_text(office: BackOffice, text: str) -> Product | None:
    """A product named anywhere in the sentence (longest phrase first)."""
    words = [w.strip(".,!?") for w in text.lower().split()][:40]
    for size in (3, 2, 1):
        for start in range(len(words) - size + 1):
            found = office.product(" ".join(words[start:start + size]))
            if found is not None:
                return found
    return None


def product_info(ctx: ActionContext) -> list[Event]:
    office, name = _office(ctx), ctx.slot("product")
    product = office.product(str(name)) if name else None
    if product is None:  # the NLU may miss plurals or brand names
        product = _product_in_text(office, str(ctx.latest_message.get("text") or ""))
    if product is None:
        return [UtterResponse("utter_product_unknown")]
    return [SlotSet("product_name", product.name),
            SlotSet("product_price", format_price(product.price)),
            SlotSet("warranty_years", str(product.warranty_years)),
            UtterResponse("utter_product_info")]


def create_ticket(ctx: ActionContext) -> list[Event]:
    user_lines = [t.text for t in ctx.state.transcript if t.role == "user" and t.text]
    ticket = _office(ctx).create_ticket(
        ctx.intent or "general", user_lines[-1] if user_lines else "",
        phone=ctx.state.caller_number, order_number=_opt(ctx.slot("order_number")),
        repair_number=_opt(ctx.slot("repair_number")))
    return [SlotSet("ticket_id", ticket.ticket_id), UtterResponse("utter_ticket_created")]


def handoff(ctx: ActionContext) -> list[Event]:
    """Ask the engine to transfer; it picks reason, skill and priority from the conversation."""
    return [HandoffRequested("")]


def _opt(value: Any) -> str | None:
    return str(value) if value else None


DEMO_ACTIONS = {
    "action_check_order_status": check_order_status,
    "action_delivery_time": delivery_time,
    "action_change_address": change_address,
    "action_cancel_order": cancel_order,
    "action_refund_status": refund_status,
    "action_track_repair": track_repair,
    "action_find_store": find_store,
    "action_book_installation": book_installation,
    "action_send_invoice": send_invoice,
    "action_product_info": product_info,
    "action_create_ticket": create_ticket,
    "action_handoff": handoff,
    "action_verify_caller": verification.verify_caller,
}


def demo_registry(registry: ActionRegistry | None = None) -> ActionRegistry:
    """A registry with every demo action (added to `registry` if given)."""
    registry = registry or ActionRegistry()
    for name, fn in DEMO_ACTIONS.items():
        registry.register(name, fn)
    return registry
