"""Human handoff: queues per skill on Redis, agents and their presence, the router, the agent's context.

`build_service(settings)` gives the `HandoffService` the app starts (`await service.start()`) and
stops (`await service.stop()`); `build_session_store(settings)` the Redis conversation store."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from handoff.agent_store import RedisAgentStore
from handoff.config import HandoffConfig
from handoff.contacts import BackOfficeContacts, BackOfficeOrders, ContactLookup
from handoff.directory import AgentDirectory
from handoff.errors import RedisUnavailable
from handoff.redis_conn import Keys, async_client, sync_client
from handoff.service import HandoffService, WrapUpSink
from handoff.store import RedisSessionStore

log = logging.getLogger("callpilot.handoff")


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


def agent_directory(settings: ServiceSettings, *, keys: Keys | None = None) -> AgentDirectory:
    """The agent directory `handoff.agent_store` names: Redis ("auto" with a `redis_url`, or "redis") or the
    file `agents_path`. A Redis directory still empty takes the agents of the file once (moving to several
    processes keeps the agents and their tokens)."""
    choice = settings.handoff.agent_store
    if choice == "file" or (choice == "auto" and settings.redis_url is None):
        return AgentDirectory(agents_path(settings))
    if settings.redis_url is None:
        raise ValueError("handoff.agent_store 'redis' needs redis_url (CALLPILOT_REDIS_URL): the in-process Redis"
                         " is not shared with `callpilot agent add` or with other processes")
    keys = keys or Keys()
    # look-ups run on the event loop (sign-ins, the router): a short timeout, and a pause after a failure
    store = RedisAgentStore(sync_client(settings.redis_url, timeout_s=1.0), hash_key=keys.agent_directory,
                            version_key=keys.agent_directory_version, url=settings.redis_url)
    try:
        store.import_file(agents_path(settings))
    except RedisUnavailable as exc:
        log.warning("agent directory: Redis unreachable (%s); the agents file is copied when it is back", exc)
    return AgentDirectory(store, recheck_s=1.0)


def build_service(settings: ServiceSettings, *, contacts: ContactLookup | None = None,
                  clock: Callable[[], float] = time.time, keys: Keys | None = None,
                  wrap_up_sink: WrapUpSink | None = None,
                  redact: Callable[[str], str] | None = None) -> HandoffService:
    """The service on Redis at `settings.redis_url` (None: this process's in-memory Redis); `redact` cleans a
    handoff's transcript, summary and slots before they are stored."""
    return HandoffService(async_client(settings.redis_url), config=settings.handoff,
                          directory=agent_directory(settings, keys=keys),
                          contacts=contacts or BackOfficeContacts(), clock=clock, keys=keys,
                          redis_url=settings.redis_url, wrap_up_sink=wrap_up_sink, redact=redact,
                          orders=BackOfficeOrders())


def build_session_store(settings: ServiceSettings, *, keys: Keys | None = None) -> RedisSessionStore:
    """Conversation states in the same Redis, expiring after `handoff.session_ttl_s`."""
    return RedisSessionStore(sync_client(settings.redis_url), ttl_s=settings.handoff.session_ttl_s, keys=keys)


__all__ = ["HandoffConfig", "HandoffService", "RedisSessionStore", "ServiceSettings", "agent_directory", "agents_path",
           "build_service", "build_session_store"]
