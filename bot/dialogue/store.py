"""Where conversation states live between turns."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from bot.dialogue.state import ConversationState

DEFAULT_MAX_SESSIONS = 10_000
DEFAULT_TTL_S = 3600.0


class SessionStore(Protocol):
    """Loads and saves conversation states by sender id."""

    def load(self, sender_id: str) -> ConversationState | None: ...

    def save(self, state: ConversationState) -> None: ...

    def delete(self, sender_id: str) -> None: ...


class InMemorySessionStore:
    """Keeps states as JSON strings, so whatever is saved is really serialisable.

    Bounded, so traffic cannot grow it without limit: a state unsaved for `ttl_s` is gone (as a Redis key with
    a TTL would be), and beyond `max_sessions` the least recently used state is dropped first.
    """

    def __init__(self, *, max_sessions: int = DEFAULT_MAX_SESSIONS, ttl_s: float = DEFAULT_TTL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_sessions < 1 or ttl_s <= 0:
            raise ValueError("max_sessions must be >= 1 and ttl_s > 0")
        self.max_sessions, self.ttl_s = max_sessions, ttl_s
        self._clock = clock
        self._data: OrderedDict[str, tuple[float, str]] = OrderedDict()  # sender -> (saved at, JSON), LRU first
        self._lock = threading.Lock()  # the web app runs sync routes on a thread pool

    def load(self, sender_id: str) -> ConversationState | None:
        text = self.raw(sender_id)
        return ConversationState.from_json(text) if text is not None else None

    def save(self, state: ConversationState) -> None:
        now = self._clock()
        with self._lock:
            self._data[state.sender_id] = (now, state.to_json())
            self._data.move_to_end(state.sender_id)
            self._expire(now)
            while len(self._data) > self.max_sessions:
                self._data.popitem(last=False)

    def delete(self, sender_id: str) -> None:
        with self._lock:
            self._data.pop(sender_id, None)

    def raw(self, sender_id: str) -> str | None:
        """The stored JSON text (None when absent or expired)."""
        now = self._clock()
        with self._lock:
            entry = self._data.get(sender_id)
            if entry is None:
                return None
            if now - entry[0] >= self.ttl_s:
                del self._data[sender_id]
                return None
            self._data.move_to_end(sender_id)
            return entry[1]

    def _expire(self, now: float) -> None:
        """Drop expired states from the least recently used end (saves keep that end the oldest)."""
        while self._data:
            sender, (saved_at, _) = next(iter(self._data.items()))
            if now - saved_at < self.ttl_s:
                break
            del self._data[sender]

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)
