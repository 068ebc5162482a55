"""Where conversation states live between turns."""

from __future__ import annotations

from typing import Protocol

from bot.dialogue.state import ConversationState


class SessionStore(Protocol):
    """Loads and saves conversation states by sender id."""

    def load(self, sender_id: str) -> ConversationState | None: ...

    def save(self, state: ConversationState) -> None: ...

    def delete(self, sender_id: str) -> None: ...


class InMemorySessionStore:
    """Keeps states as JSON strings, so whatever is saved is really serialisable."""

    def __init__(self) -> None:
        self._data: dict[str, str] = {}

    def load(self, sender_id: str) -> ConversationState | None:
        text = self._data.get(sender_id)
        return ConversationState.from_json(text) if text is not None else None

    def save(self, state: ConversationState) -> None:
        self._data[state.sender_id] = state.to_json()

    def delete(self, sender_id: str) -> None:
        self._data.pop(sender_id, None)

    def raw(self, sender_id: str) -> str | None:
        """The stored JSON text (for tests and debugging)."""
        return self._data.get(sender_id)

    def __len__(self) -> int:
        return len(self._data)
