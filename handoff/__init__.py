"""Human handoff: queues per skill on Redis, agents and their presence, the router, the agent's context.

`build_service(settings)` gives the `HandoffService` the app starts (`await service.start()`) and
stops (`await service.stop()`); `build_session_store(settings)` the Redis conversation store."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from handoff.config import HandoffConfig
from handoff.contacts import BackOfficeContacts, BackOfficeOrders, ContactLookup
from handoff.directory import AgentDirectory
from handoff.redis_conn import Keys, async_client, sync_client
from handoff.service import HandoffService, WrapUpSink
from handoff.store import RedisSessionStore


class ServiceSettings(Protocol):
    """What the handoff needs from callpilot's Settings."""

    @property
    def redis_url(self) -> str | None: ...

    @property
    def state_dir(self) -> Path: ...

    @property
    def handoff(self) -> HandoffConfig: ...


def agents_path(settings: ServiceSettings) -> Path:
    """The agent directory file: `handoff.agents_file`, else `<state_dir>/agents.json`."""
    configured = settings.handoff.agents_file
    return Path(configured) if configured else Path(settings.state_dir) / "agents.json"


def build_service(settings: ServiceSettings, *, contacts: ContactLookup | None = None,
                  clock: Callable[[], float] = time.time, keys: Keys | None = None,
                  wrap_up_sink: WrapUpSink | None = None,
                  redact: Callable[[str], str] | None = None) -> HandoffService:
    """The service on Redis at `settings.redis_url` (None: this process's in-memory Redis); `redact` cleans a
    handoff's transcript, summary and slots before they are stored."""
    return HandoffService(async_client(settings.redis_url), config=settings.handoff,
                          directory=AgentDirectory(agents_path(settings)),
                          contacts=contacts or BackOfficeContacts(), clock=clock, keys=keys,
                          redis_url=settings.redis_url, wrap_up_sink=wrap_up_sink, redact=redact,
                          orders=BackOfficeOrders())


def build_session_store(settings: ServiceSettings, *, keys: Keys | None = None) -> RedisSessionStore:
    """Conversation states in the same Redis, expiring after `handoff.session_ttl_s`."""
    return RedisSessionStore(sync_client(settings.redis_url), ttl_s=settings.handoff.session_ttl_s, keys=keys)


__all__ = ["HandoffConfig", "HandoffService", "RedisSessionStore", "ServiceSettings", "agents_path",
           "build_service", "build_session_store"]
