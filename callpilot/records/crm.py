"""The CRM side of a call: who the caller is (contact lookup) and a follow-up ticket when the call ends.

Two `ContactLookup`s (the handoff's protocol, `async def by_number(number) -> Contact | None`):
`SqlContacts` reads the built-in `contacts` table (seeded with the demo customers by the migrations);
`HttpContacts` asks an external CRM (`GET {crm_url}/contacts?phone=+1...`) with a timeout and falls back to
another lookup when the CRM is slow, down or answers nonsense, so a caller is never kept waiting on it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.backoffice import normalize_phone
from bot.urls import mask_url, mask_urls_in
from callpilot.records.db import Database
from callpilot.records.models import CallRecord, Ticket
from callpilot.records.models import Contact as ContactRow
from callpilot.settings import Settings
from handoff.contacts import ContactLookup
from handoff.model import Contact

log = logging.getLogger("callpilot.records.crm")


def _key(number: str) -> str:
    return normalize_phone(number) or number.strip()


def find_contact(session: Session, number: str) -> ContactRow | None:
    return session.scalar(select(ContactRow).where(ContactRow.phone == _key(number)))


def _contact(row: ContactRow) -> Contact:
    return Contact(contact_id=row.customer_id or f"contact-{row.id}", name=row.name, phone=row.phone,
                   email=row.email, tier=row.tier, city=row.city, source="sql")


class SqlContacts:
    """The built-in contacts table."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def lookup(self, number: str) -> Contact | None:
        with self.database.session() as session:
            row = find_contact(session, number)
            return _contact(row) if row is not None else None

    async def by_number(self, number: str) -> Contact | None:
        return await asyncio.to_thread(self.lookup, number)


class NobodyKnown:
    async def by_number(self, number: str) -> Contact | None:
        return None


class HttpContacts:
    """An external CRM over HTTP; on timeout or error the fallback lookup answers instead."""

    def __init__(self, base_url: str, *, timeout: float = 2.0, fallback: ContactLookup | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.fallback = fallback or NobodyKnown()
        self._transport = transport

    async def by_number(self, number: str) -> Contact | None:
        phone = _key(number)
        try:
            async with httpx.AsyncClient(timeout=self.timeout, transport=self._transport) as client:
                response = await client.get(f"{self.base_url}/contacts", params={"phone": phone})
            if response.status_code == 404:
                return None
            response.raise_for_status()
            return parse_crm_contact(response.json(), phone)
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            log.warning("CRM lookup failed (%s: %s) at %s; using %s", type(exc).__name__, mask_urls_in(str(exc)),
                        mask_url(self.base_url),
                        type(self.fallback).__name__)
            return await self.fallback.by_number(number)


def parse_crm_contact(body: Any, phone: str) -> Contact | None:
    """The CRM's answer: a contact object, a list of them (first wins), or {"contacts": [...]}."""
    if isinstance(body, dict) and "contacts" in body:
        body = body["contacts"]
    if isinstance(body, list):
        if not body:
            return None
        body = body[0]
    if not isinstance(body, dict):
        raise ValueError(f"expected a contact object, got {type(body).__name__}")
    contact_id = body.get("contact_id") or body.get("id") or body.get("customer_id")
    if contact_id is None:
        raise KeyError("the CRM's contact has no id")

    def text(key: str) -> str | None:
        value = body.get(key)
        return None if value is None else str(value)

    return Contact(contact_id=str(contact_id), name=str(body.get("name") or ""),
                   phone=str(body.get("phone") or phone), email=text("email"), tier=text("tier"),
                   city=text("city"), source="crm")


def contact_lookup(settings: Settings, database: Database) -> ContactLookup:
    """The lookup the settings ask for: the external CRM (falling back to SQL) or the SQL table."""
    sql = SqlContacts(database)
    if settings.crm_url:
        return HttpContacts(settings.crm_url, timeout=settings.crm_timeout, fallback=sql)
    return sql


# Tickets: one per ended call, in the built-in tickets table.


def _ticket_text(row: CallRecord) -> tuple[str, str]:
    who = row.caller_number or "unknown caller"
    if row.disposition:
        outcome = row.disposition
    elif row.status == "abandoned":
        outcome = f"abandoned in queue {row.queue}" if row.queue else "abandoned"
    elif row.agent_id or row.agent_name:  # an agent took it (or, for a posted call, handled it)
        why = f" ({row.handoff_reason})" if row.handoff_reason else ""
        outcome = f"handled by {row.agent_name or row.agent_id}{why}"
    elif row.handoff_at is not None:  # handed off, and no agent answered (back to the bot, an overflow)
        outcome = f"handed off to queue {row.queue or '?'} ({row.handoff_reason or 'handoff'}), no agent answered"
    elif row.contained:
        outcome = "resolved by the bot"
    else:  # e.g. a call another system reported: only its status is known
        outcome = row.status.replace("_", " ")
    lines = [
        f"Call {row.call_id} from {who}, {row.duration_s or 0:.0f} s, {outcome}.",
        f"Intents: {', '.join(row.intents) or '-'}",
    ]
    if row.queue:
        lines.append(f"Queue: {row.queue}; wait {row.wait_s or 0:.0f} s; talk {row.talk_s or 0:.0f} s")
    if row.notes:
        lines.append(f"Notes: {row.notes}")
    return f"Call from {who}: {outcome}"[:256], "\n".join(lines)


def call_ended(session: Session, row: CallRecord) -> Ticket:
    """Attach the contact (by number) and open the call's ticket (once)."""
    if row.customer_id is None and row.caller_number:
        contact = find_contact(session, row.caller_number)
        row.customer_id = contact.customer_id if contact is not None else None
    ticket = session.scalar(select(Ticket).where(Ticket.call_id == row.call_id))
    subject, body = _ticket_text(row)
    if ticket is None:
        ticket = Ticket(call_id=row.call_id, customer_id=row.customer_id, caller_number=row.caller_number,
                        subject=subject, body=body, status="open")
        session.add(ticket)
    return ticket


def wrap_up_after_end(session: Session, row: CallRecord) -> Ticket:
    """The agent's wrap-up arrived after the call ended: the ticket gets the disposition and notes."""
    ticket = call_ended(session, row)
    ticket.subject, ticket.body = _ticket_text(row)
    return ticket
