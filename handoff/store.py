"""Conversation states in Redis with a TTL: bot.dialogue's SessionStore protocol, shared by processes.

If Redis goes away mid-call the conversation must go on: a save that fails is kept in memory and
written back (re-synced) by the next call that reaches Redis. The dialogue engine saves from several worker
threads at once: the pending changes are guarded by a lock, and a change is dropped from them only once the
text written is still the latest for its sender."""

from __future__ import annotations

import logging
import threading

import redis

from bot.dialogue.state import ConversationState
from handoff.redis_conn import TRANSIENT, Keys

log = logging.getLogger("callpilot.handoff")


class RedisSessionStore:
    """`load` / `save` / `delete` ConversationState JSON under `<prefix>session:<sender_id>`."""

    def __init__(self, client: redis.Redis, *, ttl_s: int = 3600, keys: Keys | None = None) -> None:
        self._client = client
        self._ttl_s = ttl_s
        self._keys = keys or Keys()
        self._unsynced: dict[str, str | None] = {}  # sender id -> JSON (None: a pending delete)
        self._lock = threading.Lock()

    @property
    def unsynced(self) -> int:
        """States changed while Redis was unreachable, not yet written back."""
        return len(self._unsynced)

    def load(self, sender_id: str) -> ConversationState | None:
        if sender_id in self._unsynced:
            self._resync()
            with self._lock:
                pending = sender_id in self._unsynced
                text = self._unsynced.get(sender_id)
            if pending:
                return ConversationState.from_json(text) if text is not None else None
        try:
            raw = self._client.get(self._keys.session(sender_id))
        except TRANSIENT as exc:
            log.warning("session store: Redis unreachable on load (%s); starting afresh", exc)
            return None
        return ConversationState.from_json(str(raw)) if raw is not None else None

    def save(self, state: ConversationState) -> None:
        text = state.to_json()
        with self._lock:
            self._unsynced[state.sender_id] = text
        self._resync()

    def delete(self, sender_id: str) -> None:
        with self._lock:
            self._unsynced[sender_id] = None
        self._resync()

    def raw(self, sender_id: str) -> str | None:
        """The stored JSON text (for tests and debugging)."""
        value = self._client.get(self._keys.session(sender_id))
        return None if value is None else str(value)

    def _resync(self) -> None:
        """Write every pending change; keep what fails for next time. One writer at a time: two threads writing
        one sender's states could otherwise leave the older one in Redis."""
        with self._lock:
            for sender_id, text in list(self._unsynced.items()):
                key = self._keys.session(sender_id)
                try:
                    if text is None:
                        self._client.delete(key)
                    else:
                        self._client.set(key, text, ex=self._ttl_s)
                except TRANSIENT as exc:
                    log.warning("session store: Redis unreachable (%s); %d state(s) kept in memory",
                                exc, len(self._unsynced))
                    return
                del self._unsynced[sender_id]
