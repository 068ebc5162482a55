"""Text-channel conversations (the REST channel) as call records, through the same writer as calls.

A text conversation has no hang-up: it is one record per sender from its first message until it has been
idle for `idle_s` (the dialogue session's lifetime); it is ended by the server's periodic `end_idle()`, when
the next message from anyone arrives, or when the server stops. Like a phone call, its start and end go to the
`observer` (metrics and the call.started / call.ended webhooks), with transport "text".
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from callpilot.records.models import utcnow
from callpilot.records.projection import RecordEvent

TEXT_TRANSPORT = "text"


class ConversationObserver(Protocol):
    """The part of the voice pipeline's observer a text conversation reports to (callpilot.ops.OpsObserver)."""

    def on_call_started(self, call_id: str, transport: str, caller: str) -> None: ...
    def on_call_ended(self, call_id: str, reason: str) -> None: ...


@dataclass
class _Conversation:
    call_id: str
    last_seen: datetime
    answering: int = 0  # messages `begin` saw arrive and `exchange` has not recorded yet: not idle meanwhile


class TextConversations:
    """Turns REST-channel exchanges into started / turn / ended events for the records writer."""

    def __init__(self, submit: Callable[[RecordEvent], object], *, idle_s: float = 900.0,
                 clock: Callable[[], datetime] = utcnow, observer: ConversationObserver | None = None) -> None:
        self.submit = submit
        self.idle = timedelta(seconds=idle_s)
        self.clock = clock
        self.observer = observer  # metrics, webhooks (callpilot.ops)
        self._open: dict[str, _Conversation] = {}
        self._count = 0
        self._lock = threading.Lock()  # FastAPI runs sync routes on a thread pool

    def call_id_of(self, sender: str) -> str | None:
        """The open conversation's call id for `sender` (None: none open)."""
        with self._lock:
            conversation = self._open.get(sender)
            return conversation.call_id if conversation is not None else None

    def begin(self, sender: str) -> str:
        """Open `sender`'s conversation if it is not open yet (before the bot answers); its call id. Until
        `exchange` records the answer, the conversation is not idle, however long the turn takes."""
        conversation = self._touch(sender, self.clock())
        with self._lock:
            conversation.answering += 1
        return conversation.call_id

    def exchange(self, sender: str, message: str, replies: Sequence[Mapping[str, Any]]) -> str:
        """Record one message and the bot's replies; returns the conversation's call id."""
        now = self.clock()
        conversation = self._touch(sender, now)
        with self._lock:
            conversation.answering = max(0, conversation.answering - 1)
        self.submit(RecordEvent(conversation.call_id, "turn", now, {"speaker": "caller", "text": message}))
        for reply in replies:
            if reply.get("text"):
                self.submit(RecordEvent(conversation.call_id, "turn", now, {"speaker": "bot", "text": reply["text"]}))
        return conversation.call_id

    def _touch(self, sender: str, now: datetime) -> _Conversation:
        with self._lock:
            self._end_idle(now)
            conversation = self._open.get(sender)
            if conversation is None:
                self._count += 1
                conversation = _Conversation(f"text-{now:%Y%m%d%H%M%S}-{self._count}", now)
                self._open[sender] = conversation
                self.submit(RecordEvent(conversation.call_id, "started", now, {"channel": "text", "caller": sender}))
                if self.observer is not None:
                    self.observer.on_call_started(conversation.call_id, TEXT_TRANSPORT, sender)
            conversation.last_seen = now
            return conversation

    def close_all(self) -> None:
        """The server stops: every open conversation ends at its last message."""
        with self._lock:
            for conversation in self._open.values():
                self._end(conversation, "server_stopped")
            self._open.clear()

    def end_idle(self) -> int:
        """End the conversations idle for `idle_s` by now (the server calls this periodically); how many."""
        with self._lock:
            before = len(self._open)
            self._end_idle(self.clock())
            return before - len(self._open)

    def _end_idle(self, now: datetime) -> None:
        for sender, conversation in list(self._open.items()):
            if not conversation.answering and now - conversation.last_seen >= self.idle:
                self._end(conversation, "idle")
                del self._open[sender]

    def _end(self, conversation: _Conversation, reason: str) -> None:
        self.submit(RecordEvent(conversation.call_id, "ended", conversation.last_seen, {"reason": reason}))
        if self.observer is not None:
            self.observer.on_call_ended(conversation.call_id, reason)
