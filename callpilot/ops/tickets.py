"""Tickets for the CRM: every call's ticket is in the tickets table; this also sends it where the settings say.

`ticket_delivery`:
- "table": nothing more (integrators read `GET /api/v1/tickets`);
- "webhook": `ticket.created` / `ticket.updated` go to the webhook subscribers that want them;
- "crm": the same signed envelope is POSTed to `{crm_url}/tickets`, with its own queue and retries.

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
        if self.mode == "crm":
            assert settings.crm_url is not None  # Settings checks this
            target = Subscription(f"{settings.crm_url.rstrip('/')}/tickets", settings.crm_secret or "",
                                  TICKET_EVENTS)
            self.crm = WebhookDispatcher([target], backoff=Backoff(max_attempts=settings.webhook_max_attempts),
                                         timeout_s=max(settings.crm_timeout, 5.0))
        self.hooks = hooks if self.mode == "webhook" else self.crm

    def __call__(self, event: str, ticket: Mapping[str, Any]) -> None:
        if event not in TICKET_EVENTS:
            raise ValueError(f"not a ticket event: {event!r}")
        if self.hooks is not None:
            self.hooks.emit(event, ticket)

    async def start(self) -> None:
        if self.crm is not None:
            await self.crm.start()

    async def drain(self) -> None:
        if self.crm is not None:
            await self.crm.drain()

    async def stop(self) -> None:
        if self.crm is not None:
            await self.crm.stop()
