"""Call lifecycle events (started, turn, dtmf, handoff, ended) as JSON lines, for the call records."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

log = logging.getLogger(__name__)


class LifecycleKind(StrEnum):
    """What happened in a call."""

    STARTED = "started"
    ANSWERED = "answered"  # the bot's first audio went to the caller
    TURN = "turn"
    DTMF = "dtmf"
    HANDOFF = "handoff"
    ENDED = "ended"


@dataclass(frozen=True)
class CallEvent:
    """One line of the call log; `data` holds the kind's details (JSON values only)."""

    call_id: str
    kind: LifecycleKind
    at: float
    call_ms: int  # position in the call (caller-stream time)
    data: Mapping[str, object] = field(default_factory=dict)

    def to_json(self) -> str:
        record = {"call_id": self.call_id, "event": self.kind.value, "at": round(self.at, 3), "call_ms": self.call_ms}
        return json.dumps({**record, **self.data}, ensure_ascii=False, default=str)

    @classmethod
    def from_json(cls, line: str) -> CallEvent:
        raw = json.loads(line)
        data = {k: v for k, v in raw.items() if k not in ("call_id", "event", "at", "call_ms")}
        return cls(str(raw["call_id"]), LifecycleKind(raw["event"]), float(raw["at"]), int(raw["call_ms"]), data)


Listener = Callable[[CallEvent], None]


class CallLog:
    """Appends events to a JSON-lines file (one shared by all calls; each line is written whole).

    Listeners (`subscribe`) see every event after it is written, e.g. the call records' buffered writer.
    They run on the caller's thread, so they must return at once; one that raises is logged and skipped.
    """

    def __init__(self, path: Path | None, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []
        self.events: list[CallEvent] = []  # kept in memory when there is no file (tests, `path=None`)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener(event)` for every event from now on; returns a function that unsubscribes."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def record(self, call_id: str, kind: LifecycleKind, call_ms: float, **data: object) -> CallEvent:
        event = CallEvent(call_id, kind, self.clock(), int(call_ms), data)
        if self.path is None:
            self.events.append(event)
        else:
            with self._lock:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as out:
                    out.write(event.to_json() + "\n")
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a broken listener must not break the call
                log.exception("call log listener %r failed on %s", listener, event.kind)
        return event


def read_call_log(path: Path) -> list[CallEvent]:
    """Every event in a call log file, oldest first."""
    if not path.exists():
        return []
    return [CallEvent.from_json(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
