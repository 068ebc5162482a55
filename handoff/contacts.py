"""Who is calling: the ContactLookup protocol and its built-in implementation over the demo back office."""

from __future__ import annotations

from typing import Protocol

from bot.backoffice import BackOffice
from handoff.model import Contact, RecentOrder


class ContactLookup(Protocol):
    """Finds the customer record for a caller's number (a CRM, an SQL table, the demo data)."""

    async def by_number(self, number: str) -> Contact | None: ...


class BackOfficeContacts:
    """Customers of `bot.backoffice` (the demo company), found by their E.164 phone number."""

    def __init__(self, office: BackOffice | None = None) -> None:
        self._office = office or BackOffice.demo()

    async def by_number(self, number: str) -> Contact | None:
        customer = self._office.customer_by_phone(number)
        if customer is None:
            return None
        return Contact(contact_id=customer.customer_id, name=customer.name, phone=customer.phone,
                       email=customer.email, tier=customer.tier.value,
                       city=customer.city, source="backoffice")


class NoContacts:
    """A lookup that never finds anyone (no customer data configured)."""

    async def by_number(self, number: str) -> Contact | None:
        return None


class OrderLookup(Protocol):
    """The caller's recent orders by their number (the screen pop's "recent orders")."""

    async def recent_orders(self, number: str) -> tuple[RecentOrder, ...]: ...


class BackOfficeOrders:
    """Orders of `bot.backoffice` (the demo company's order system) placed with the caller's number."""

    def __init__(self, office: BackOffice | None = None, *, limit: int = 3) -> None:
        self._office = office or BackOffice.demo()
        self.limit = limit

    async def recent_orders(self, number: str) -> tuple[RecentOrder, ...]:
        return tuple(RecentOrder(number=o.number, status=o.status.value, ordered=o.order_date.isoformat(),
                                 total=f"{o.total:.2f}", items=", ".join(f"{i.quantity} x {i.name}" for i in o.items))
                     for o in self._office.orders_for_phone(number)[: self.limit])


class NoOrders:
    """No order system connected."""

    async def recent_orders(self, number: str) -> tuple[RecentOrder, ...]:
        return ()
