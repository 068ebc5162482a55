"""The demo company's back office: look-ups and the few changes a caller may ask for.

Each `BackOffice` owns its own copy of the data; changes (cancellations,
bookings, tickets...) live only in that instance, so demos and tests never
leak state into each other.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

from bot.backoffice.dates import parse_spoken_date
from bot.backoffice.ids import (
    normalize_email,
    normalize_order_number,
    normalize_phone,
    normalize_repair_number,
)
from bot.backoffice.installations import InstallationCalendar
from bot.backoffice.loading import DEMO_DATA_DIR, DemoData, parse_data, read_data_dir
from bot.backoffice.models import (
    City,
    Customer,
    Order,
    OrderStatus,
    Product,
    Refund,
    RefundStatus,
    Repair,
    Store,
    Tier,
)
from bot.backoffice.results import (
    AddressChangeOutcome,
    AddressChangeResult,
    CancelOutcome,
    CancelResult,
    InstallationOutcome,
    InstallationResult,
    Invoice,
    Ticket,
)
from bot.places import Gazetteer, default_gazetteer

HIGH_PRIORITY_TOPICS = frozenset({"complaint", "billing_dispute"})


class UnknownOrderError(LookupError):
    """No order has the given number."""


class BackOffice:
    """Orders, repairs, stores, products and customers of the demo company."""

    def __init__(self, data: DemoData, *, clock: Callable[[], datetime] | None = None,
                 gazetteer: Callable[[], Gazetteer] = default_gazetteer) -> None:
        self._data = data
        self._gazetteer = gazetteer  # loaded on the first city our data does not list
        self._clock = clock or (lambda: datetime.combine(data.as_of, datetime.now().time()))
        self._orders = {order.number: order for order in data.orders}
        self._repairs = {repair.number: repair for repair in data.repairs}
        self._customers = {customer.customer_id: customer for customer in data.customers}
        self._cities = {city.name.lower(): city for city in data.cities}
        self._calendar = InstallationCalendar(data.as_of)
        self._tickets: list[Ticket] = []
        self._invoices: list[Invoice] = []
        self._ids = {kind: itertools.count(1) for kind in ("INV", "TCK", "INS")}

    @classmethod
    def demo(cls, *, today: date | None = None, data_dir: Path = DEMO_DATA_DIR) -> BackOffice:
        """The shipped demo data, with dates moved so that the data's `as_of` is `today`."""
        return cls(parse_data(read_data_dir(data_dir), today=today or date.today()))

    @property
    def today(self) -> date:
        return self._data.as_of

    @property
    def orders(self) -> tuple[Order, ...]:
        return tuple(self._orders.values())

    @property
    def repairs(self) -> tuple[Repair, ...]:
        return tuple(self._repairs.values())

    @property
    def stores(self) -> tuple[Store, ...]:
        return self._data.stores

    @property
    def products(self) -> tuple[Product, ...]:
        return self._data.products

    @property
    def customers(self) -> tuple[Customer, ...]:
        return self._data.customers

    @property
    def tickets(self) -> tuple[Ticket, ...]:
        return tuple(self._tickets)

    @property
    def invoices(self) -> tuple[Invoice, ...]:
        return tuple(self._invoices)

    # Look-ups.

    def order(self, number: str) -> Order | None:
        """The order with this number, written or spoken (`four eight two one five`)."""
        key = normalize_order_number(number)
        return self._orders.get(key) if key else None

    def orders_for_phone(self, phone: str) -> list[Order]:
        """Orders placed with this phone number, newest first."""
        key = normalize_phone(phone)
        found = [order for order in self._orders.values() if key and order.phone == key]
        return sorted(found, key=lambda order: order.order_date, reverse=True)

    def customer(self, customer_id: str) -> Customer | None:
        return self._customers.get(customer_id)

    def customer_by_phone(self, phone: str) -> Customer | None:
        key = normalize_phone(phone)
        return next((c for c in self._customers.values() if key and c.phone == key), None)

    def repair(self, number: str) -> Repair | None:
        """The repair with this number (`R104233`, `r one zero four two three three`)."""
        key = normalize_repair_number(number)
        return self._repairs.get(key) if key else None

    def repairs_for_customer(self, customer_id: str) -> list[Repair]:
        return [r for r in self._repairs.values() if r.customer_id == customer_id]

    def refund_for(self, order_number: str) -> Refund | None:
        """The refund of a cancelled or returned order, if there is one."""
        order = self.order(order_number)
        return order.refund if order else None

    def product(self, name_or_synonym: str) -> Product | None:
        """A product by SKU, name or alias; a category or its synonym gives its first product."""
        key = " ".join(name_or_synonym.lower().split()).removeprefix("brightline ")
        for product in self._data.products:
            names = (product.sku.lower(), product.name.lower(), *product.aliases)
            if key in names:
                return product
        category = self._data.categories.get(key)
        return next((p for p in self._data.products if p.category == category), None)

    def products_in(self, category: str) -> list[Product]:
        """Every product of a category, given by its name or a synonym (`fridge`)."""
        canonical = self._data.categories.get(category.lower().strip())
        return [p for p in self._data.products if p.category == canonical]

    def stores_in(self, city: str) -> list[Store]:
        key = city.strip().lower()
        return [store for store in self._data.stores if store.city.lower() == key]

    def nearest_store(self, city: str) -> Store | None:
        """The store in `city`, else the closest one on the map, else the default store."""
        here = self.stores_in(city)
        if here:
            return here[0]
        place = self._cities.get(city.strip().lower()) or self._place_of(city)
        if place is not None:
            located = [
                (store, spot)
                for store in self._data.stores
                if (spot := self._cities.get(store.city.lower())) is not None
            ]
            if located:
                return min(located, key=lambda pair: place.distance_km(pair[1]))[0]
        stores = self._data.stores
        return next(
            (store for store in stores if store.is_default),
            stores[0] if stores else None,
        )

    def _place_of(self, city: str) -> City | None:
        """A city our data does not list, placed by the world gazetteer ("Tulsa", "杭州")."""
        if not city.strip():
            return None
        found = self._gazetteer().lookup(city)
        return None if found is None else City(found.name, found.country, found.lat, found.lon)

    # Changes, kept in this instance only.

    def cancel_order(self, number: str) -> CancelResult:
        """Cancel an order that has not left the warehouse; the full amount is refunded."""
        order = self.order(number)
        if order is None:
            return CancelResult(CancelOutcome.NOT_FOUND, number)
        if order.status is OrderStatus.CANCELLED:
            return CancelResult(CancelOutcome.ALREADY_CANCELLED, order.number, order)
        if order.status is not OrderStatus.PROCESSING:
            return CancelResult(CancelOutcome.ALREADY_SHIPPED, order.number, order)
        refund = Refund(order.total, RefundStatus.PENDING, "cancelled", self.today)
        cancelled = dataclasses.replace(
            order,
            status=OrderStatus.CANCELLED,
            ship_date=None,
            delivery_window=None,
            refund=refund,
        )
        self._orders[order.number] = cancelled
        return CancelResult(CancelOutcome.CANCELLED, order.number, cancelled, refund.amount)

    def change_address(
        self,
        number: str,
        city: str,
        *,
        street: str | None = None,
        zip_code: str | None = None,
    ) -> AddressChangeResult:
        """Send a not-yet-shipped order to another city (street and zip confirmed later if not given)."""
        order = self.order(number)
        if order is None:
            return AddressChangeResult(AddressChangeOutcome.NOT_FOUND, number)
        if order.status is OrderStatus.CANCELLED:
            return AddressChangeResult(AddressChangeOutcome.CANCELLED, order.number, order)
        if order.status is not OrderStatus.PROCESSING:
            return AddressChangeResult(AddressChangeOutcome.ALREADY_SHIPPED, order.number, order)
        place = self._cities.get(city.strip().lower()) or self._place_of(city)
        if place is None:
            return AddressChangeResult(AddressChangeOutcome.UNKNOWN_CITY, order.number, order)
        address = dataclasses.replace(
            order.address,
            street=street or "to be confirmed",
            city=place.name,
            state=place.state,
            zip_code=zip_code or "",
        )
        changed = dataclasses.replace(order, address=address)
        self._orders[order.number] = changed
        return AddressChangeResult(AddressChangeOutcome.CHANGED, order.number, changed)

    def create_invoice(self, number: str, email: str) -> Invoice:
        """E-mail an invoice for an order; raises UnknownOrderError or ValueError (bad email)."""
        order = self.order(number)
        if order is None:
            raise UnknownOrderError(number)
        address = normalize_email(email)
        if address is None:
            raise ValueError(f"not an email address: {email!r}")
        invoice = Invoice(
            self._next_id("INV", 5),
            order.number,
            address,
            order.customer_name,
            order.total,
            self.today,
        )
        self._invoices.append(invoice)
        return invoice

    def create_ticket(
        self,
        topic: str,
        summary: str,
        *,
        phone: str | None = None,
        order_number: str | None = None,
        repair_number: str | None = None,
    ) -> Ticket:
        """Open a case for the human team; complaints, disputes and premium callers go first."""
        customer = self.customer_by_phone(phone) if phone else None
        order = self.order(order_number) if order_number else None
        if customer is None and order is not None:
            customer = self.customer(order.customer_id)
        urgent = topic in HIGH_PRIORITY_TOPICS or (
            customer is not None and customer.tier is Tier.PREMIUM
        )
        ticket = Ticket(
            ticket_id=self._next_id("TCK", 5),
            topic=topic,
            summary=summary,
            priority="high" if urgent else "normal",
            created_at=self._clock(),
            customer_id=customer.customer_id if customer else None,
            phone=normalize_phone(phone) if phone else None,
            order_number=order.number if order else order_number,
            repair_number=normalize_repair_number(repair_number) if repair_number else None,
        )
        self._tickets.append(ticket)
        return ticket

    def book_installation(self, product: str, day: date | str) -> InstallationResult:
        """Book an installer (not today, not on Sundays, a few jobs a day); `day` may be spoken."""
        when = day if isinstance(day, date) else parse_spoken_date(day, self.today)
        if when is None:
            raise ValueError(f"not a date: {day!r}")
        found = self.product(product)
        if found is None:
            return InstallationResult(InstallationOutcome.UNKNOWN_PRODUCT, product, when)
        if not found.installation_available:
            return InstallationResult(InstallationOutcome.NOT_AVAILABLE, found.name, when)
        refusal = self._calendar.refusal(when)
        if refusal is not None:
            return InstallationResult(
                refusal, found.name, when, next_free_day=self._calendar.next_free(when)
            )
        self._calendar.take(when)
        booking_id = self._next_id("INS", 4)
        return InstallationResult(
            InstallationOutcome.BOOKED,
            found.name,
            when,
            booking_id,
            found.installation_price,
        )

    def _next_id(self, kind: str, width: int) -> str:
        return f"{kind}-{next(self._ids[kind]):0{width}d}"
