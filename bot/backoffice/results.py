"""What the back office answers when asked to change something (cancel, re-route, book...)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from bot.backoffice.models import Order


class CancelOutcome(enum.StrEnum):
    CANCELLED = "cancelled"
    NOT_FOUND = "not_found"
    ALREADY_SHIPPED = "already_shipped"
    ALREADY_CANCELLED = "already_cancelled"


@dataclass(frozen=True)
class CancelResult:
    """Result of a cancellation request; `order` is the order after the request, if found."""

    outcome: CancelOutcome
    order_number: str
    order: Order | None = None
    refund_amount: Decimal | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is CancelOutcome.CANCELLED


class AddressChangeOutcome(enum.StrEnum):
    CHANGED = "changed"
    NOT_FOUND = "not_found"
    ALREADY_SHIPPED = "already_shipped"
    CANCELLED = "cancelled"
    UNKNOWN_CITY = "unknown_city"


@dataclass(frozen=True)
class AddressChangeResult:
    """Result of a delivery-address change; `order` is the order after the request, if found."""

    outcome: AddressChangeOutcome
    order_number: str
    order: Order | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is AddressChangeOutcome.CHANGED


@dataclass(frozen=True)
class Invoice:
    """An invoice e-mailed for an order."""

    invoice_id: str
    order_number: str
    email: str
    customer_name: str
    total: Decimal
    issued_on: date


@dataclass(frozen=True)
class Ticket:
    """A case opened for the human team (complaint, fault, account issue...)."""

    ticket_id: str
    topic: str
    summary: str
    priority: str  # "normal" | "high"
    created_at: datetime
    customer_id: str | None = None
    phone: str | None = None
    order_number: str | None = None
    repair_number: str | None = None


class InstallationOutcome(enum.StrEnum):
    BOOKED = "booked"
    UNKNOWN_PRODUCT = "unknown_product"
    NOT_AVAILABLE = "not_available"  # the product has no installation service
    DATE_TOO_SOON = "date_too_soon"  # installers need a day's notice
    NO_INSTALLS_ON_SUNDAY = "no_installs_on_sunday"
    FULLY_BOOKED = "fully_booked"


@dataclass(frozen=True)
class InstallationResult:
    """Result of an installation booking; `booking_id` and `price` are set when booked."""

    outcome: InstallationOutcome
    product: str
    day: date
    booking_id: str | None = None
    price: Decimal | None = None
    next_free_day: date | None = None  # suggested instead when the day cannot be booked

    @property
    def ok(self) -> bool:
        return self.outcome is InstallationOutcome.BOOKED
