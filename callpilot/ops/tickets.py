"""Tickets for the CRM: every call's ticket is in the tickets table; this also sends it where the settings say.

`ticket_delivery`:
- "table": nothing more (integrators read `GET /api/v1/tickets`);
- "webhook": `ticket.created` / `ticket.updated` go to the webhook subscribers that want them;
- "crm": the same signed envelope is POSTed to `{crm_url}/tickets`, with its own queue and retries. Never
  unsigned: without `crm_secret` nothing is sent (the server says so at start, and for each ticket kept).

The records writer calls a `TicketDelivery` from its thread after the ticket is committed; delivery only
queues (the dispatcher posts from the event loop), so the writer never waits for the CRM.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from callpilot.ops.webhooks import Backoff, Subscription, WebhookDispatcher
from callpilot.settings import Settings

log = logging.getLogger("callpilot.ops.tickets")

TICKET_EVENTS = frozenset({"ticket.created", "ticket.updated"})


class TicketDelivery:
    """`delivery(event, ticket)`: a ticket opened or updated, out to the webhooks or the CRM (see module)."""

    def __init__(self, settings: Settings, hooks: WebhookDispatcher) -> None:
        self.mode = settings.ticket_delivery
        self.crm: WebhookDispatcher | None = None
        self.unsigned = self.mode == "crm" and not settings.crm_secret  # refused: tickets stay in the table
        if self.mode == "crm" and not self.unsigned:
            assert settings.crm_url is not None and settings.crm_secret  # Settings checks the URL
            target = Subscription(f"{settings.crm_url.rstrip('/')}/tickets", settings.crm_secret, TICKET_EVENTS)
            self.crm = WebhookDispatcher([target], backoff=Backoff(max_attempts=settings.webhook_max_attempts),
                                         timeout_s=max(settings.crm_timeout, 5.0))
        self.hooks = hooks if self.mode == "webhook" else self.crm

    def __call__(self, event: str, ticket: Mapping[str, Any]) -> None:
        if event not in TICKET_EVENTS:
            raise ValueError(f"not a ticket event: {event!r}")
        if self.unsigned:
            log.error("%s of ticket %s for call %s kept in the tickets table, not sent to the CRM: crm_secret is "
                      "not set (tickets are never sent unsigned)", event, ticket.get("ticket_id"),
                      ticket.get("call_id"))
        elif self.hooks is not None:
            self.hooks.emit(event, ticket)

    async def start(self) -> None:
        if self.unsigned:
            log.error("ticket_delivery is crm but crm_secret (CALLPILOT_CRM_SECRET) is not set: tickets stay in the "
                      "tickets table and are not sent, since the CRM could not tell them from forgeries")
        if self.crm is not None:
            await self.crm.start()

    async def drain(self) -> None:
        if self.crm is not None:
            await self.crm.drain()

    async def stop(self) -> None:
        if self.crm is not None:
            await self.crm.stop()
