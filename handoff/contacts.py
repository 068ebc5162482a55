"""Who is calling: the ContactLookup protocol and its built-in implementation over the demo back office."""

from __future__ import annotations

from typing import Protocol

from bot.backoffice import BackOffice
from handoff.model import Contact


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
