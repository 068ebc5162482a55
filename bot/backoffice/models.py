"""Typed records of the demo back office: products, customers, orders, repairs, stores."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal


class OrderStatus(enum.StrEnum):
    """Where an order is in its life; only `PROCESSING` orders can still be changed."""

    PROCESSING = "processing"
    SHIPPED = "shipped"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


class RepairStatus(enum.StrEnum):
    """Where a repair is in the workshop."""

    RECEIVED = "received"
    DIAGNOSING = "diagnosing"
    WAITING_FOR_PARTS = "waiting_for_parts"
    REPAIRED = "repaired"
    RETURNED = "returned"


class RefundStatus(enum.StrEnum):
    """Progress of money going back to the customer."""

    PENDING = "pending"
    PROCESSING = "processing"
    PAID = "paid"


class Tier(enum.StrEnum):
    """Customer loyalty tier; premium customers get priority tickets."""

    STANDARD = "standard"
    PLUS = "plus"
    PREMIUM = "premium"


def format_price(amount: Decimal) -> str:
    """Say a price the way a caller expects it: `$1,199.00`."""
    return f"${amount:,.2f}"


@dataclass(frozen=True)
class Product:
    """One catalogue product; `category` is the canonical NLU product value."""

    sku: str
    name: str
    category: str
    price: Decimal
    warranty_years: int
    installation_available: bool
    installation_price: Decimal | None = None
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Customer:
    """A known caller; `phone` is in E.164 form (`+16175550142`)."""

    customer_id: str
    name: str
    phone: str
    email: str
    tier: Tier
    city: str


@dataclass(frozen=True)
class Address:
    street: str
    city: str
    state: str
    zip_code: str

    def __str__(self) -> str:
        return f"{self.street}, {self.city}, {self.state} {self.zip_code}"


@dataclass(frozen=True)
class DeliveryWindow:
    """The day and time range a delivery is booked for."""

    day: date
    start: time
    end: time

    def describe(self) -> str:
        """Spoken form, e.g. `on Tuesday June 3 between 8am and 12pm`."""
        return (
            f"on {self.day:%A %B} {self.day.day} between {_hour(self.start)} and {_hour(self.end)}"
        )


def _hour(moment: time) -> str:
    suffix = "am" if moment.hour < 12 else "pm"
    hour = moment.hour % 12 or 12
    return f"{hour}{suffix}" if moment.minute == 0 else f"{hour}:{moment.minute:02d}{suffix}"


@dataclass(frozen=True)
class OrderItem:
    sku: str
    name: str
    quantity: int
    unit_price: Decimal

    @property
    def total(self) -> Decimal:
        return self.unit_price * self.quantity


@dataclass(frozen=True)
class Refund:
    """Money owed back for a cancelled or returned order."""

    amount: Decimal
    status: RefundStatus
    reason: str  # "cancelled" | "returned"
    requested_on: date
    paid_on: date | None = None


@dataclass(frozen=True)
class Order:
    """A customer order; for a processing order `ship_date` is the planned ship date."""

    number: str
    customer_id: str
    customer_name: str
    phone: str
    email: str
    status: OrderStatus
    order_date: date
    ship_date: date | None
    delivery_window: DeliveryWindow | None
    address: Address
    carrier: str | None
    tracking_number: str | None
    payment_method: str
    items: tuple[OrderItem, ...]
    refund: Refund | None = None

    @property
    def total(self) -> Decimal:
        return sum((item.total for item in self.items), Decimal(0))

    @property
    def has_left_warehouse(self) -> bool:
        return self.status in (
            OrderStatus.SHIPPED,
            OrderStatus.OUT_FOR_DELIVERY,
            OrderStatus.DELIVERED,
        )


@dataclass(frozen=True)
class Repair:
    """An appliance in the repair workshop."""

    number: str
    customer_id: str
    order_number: str | None
    sku: str
    product: str
    fault: str
    status: RepairStatus
    received_on: date
    expected_on: date
    under_warranty: bool
    technician_notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class DayHours:
    """Opening hours of one weekday (0 = Monday); `None` times mean closed."""

    weekday: int
    opens: time | None
    closes: time | None

    @property
    def is_closed(self) -> bool:
        return self.opens is None or self.closes is None

    def describe(self) -> str:
        """Spoken form, e.g. `from 9am to 8pm` or `closed`."""
        if self.opens is None or self.closes is None:
            return "closed"
        return f"from {_hour(self.opens)} to {_hour(self.closes)}"


@dataclass(frozen=True)
class Store:
    """A showroom; `hours` has one entry per weekday, Monday first."""

    store_id: str
    name: str
    street: str
    city: str
    state: str
    zip_code: str
    phone: str
    hours: tuple[DayHours, ...]
    is_default: bool = False

    @property
    def address(self) -> str:
        return f"{self.street}, {self.city}, {self.state} {self.zip_code}"

    def hours_on(self, day: date) -> DayHours:
        return self.hours[day.weekday()]

    def is_open(self, moment: datetime) -> bool:
        today = self.hours_on(moment.date())
        if today.opens is None or today.closes is None:
            return False
        return today.opens <= moment.time() < today.closes


@dataclass(frozen=True)
class City:
    """A city the back office can place on a map (to find the nearest store)."""

    name: str
    state: str
    lat: float
    lon: float

    def distance_km(self, other: City) -> float:
        """Great-circle distance to another city."""
        lat1, lon1, lat2, lon2 = map(math.radians, (self.lat, self.lon, other.lat, other.lon))
        h = (
            math.sin((lat2 - lat1) / 2) ** 2
            + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
        )
        return 6371.0 * 2 * math.asin(math.sqrt(h))
