"""Queue settings a supervisor changes while the floor runs: strategy, ring timeout, maximum wait, overflow, and
closing a queue (a holiday).

The configured queues (`HandoffConfig.queues`) stay the base; a supervisor's changes are kept per queue in the
Redis hash `handoff:queue_changes` (JSON of the changed fields only), so every process's router sees them and
they outlive a restart. `LiveQueues.effective()` is the base with the changes applied; the routers re-read it
with their agents (every `resync_s`), so a change applies to the next offer. A change that would make an invalid
queue (a transfer overflow without a target, a negative timeout) is refused whole and nothing is stored.
"""

from __future__ import annotations

import json
from typing import Any

import redis.asyncio as aredis
from pydantic import ValidationError

from handoff.config import HandoffConfig, QueueConfig
from handoff.errors import UnknownQueue
from handoff.redis_conn import Keys, as_str

EDITABLE: tuple[str, ...] = ("strategy", "ring_timeout_s", "max_wait_s", "overflow", "overflow_target",
                             "overflow_choices", "closed")


class BadQueueChange(ValueError):
    """A change naming a field that cannot be changed here, or one that makes an invalid queue."""


def settings_json(name: str, queue: QueueConfig, changed: dict[str, Any]) -> dict[str, Any]:
    """What the supervisor page shows and edits of one queue; `changed`: the fields a supervisor set."""
    return {"queue": name, **{field: _plain(getattr(queue, field)) for field in EDITABLE},
            "changed": sorted(changed)}


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


class LiveQueues:
    """The queues as configured plus what supervisors changed (shared by every process through Redis)."""

    def __init__(self, client: aredis.Redis, keys: Keys, base: HandoffConfig) -> None:
        self.client, self.keys, self.base = client, keys, base
        self._changes: dict[str, dict[str, Any]] = {}
        self._effective = base

    def current(self) -> HandoffConfig:
        """The effective configuration as last read (no Redis round trip)."""
        return self._effective

    async def effective(self) -> HandoffConfig:
        """Re-read the changes and return the base with them applied."""
        stored = await self.client.hgetall(self.keys.queue_changes)
        changes: dict[str, dict[str, Any]] = {}
        for raw_name, raw in stored.items():
            name = as_str(raw_name)
            if name in self.base.queues:
                try:
                    loaded = json.loads(as_str(raw))
                except ValueError:
                    continue  # never written by us: the base holds
                if isinstance(loaded, dict):
                    changes[name] = loaded
        if changes != self._changes:
            self._changes = changes
            self._effective = self._apply(changes)
        return self._effective

    def _apply(self, changes: dict[str, dict[str, Any]]) -> HandoffConfig:
        queues = dict(self.base.queues)
        for name, changed in changes.items():
            try:
                queues[name] = QueueConfig.model_validate({**self.base.queues[name].model_dump(), **changed})
            except ValidationError:
                continue  # stored by an older version with other rules: the configured queue holds
        return self.base.model_copy(update={"queues": queues})

    async def describe(self) -> list[dict[str, Any]]:
        config = await self.effective()
        return [settings_json(name, config.queues[name], self._changes.get(name, {}))
                for name in sorted(config.queues)]

    async def change(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply `changes` to queue `name` (merged with earlier ones); returns the queue's settings as now."""
        if name not in self.base.queues:
            raise UnknownQueue(f"no queue {name!r} (queues: {', '.join(sorted(self.base.queues))})")
        if not isinstance(changes, dict) or not changes:
            raise BadQueueChange(f"send a JSON object with one or more of: {', '.join(EDITABLE)}")
        unknown = sorted(set(changes) - set(EDITABLE))
        if unknown:
            raise BadQueueChange(f"cannot change {', '.join(unknown)} here (changeable: {', '.join(EDITABLE)})")
        await self.effective()
        merged = {**self._changes.get(name, {}), **changes}
        try:
            queue = QueueConfig.model_validate({**self.base.queues[name].model_dump(), **merged})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or name}: {e['msg']}" for e in exc.errors())
            raise BadQueueChange(problems) from None
        # Only what differs from the configuration is kept, so a reset field follows the config file again.
        configured = self.base.queues[name]
        kept = {k: _plain(getattr(queue, k)) for k in merged if getattr(queue, k) != getattr(configured, k)}
        if kept:
            await self.client.hset(self.keys.queue_changes, name, json.dumps(kept))
        else:
            await self.client.hdel(self.keys.queue_changes, name)
        await self.effective()
        return settings_json(name, self._effective.queues[name], self._changes.get(name, {}))

    async def reset(self, name: str) -> dict[str, Any]:
        """Back to the configuration file's settings."""
        if name not in self.base.queues:
            raise UnknownQueue(f"no queue {name!r}")
        await self.client.hdel(self.keys.queue_changes, name)
        await self.effective()
        return settings_json(name, self._effective.queues[name], {})
