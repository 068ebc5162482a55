"""Call lifecycle events (started, turn, dtmf, handoff, ended) as JSON lines, for the call records.

The file holds personal data, so every line is redacted as it is written (the redactor is injected: the
records' one in the server), the file is created 0600 in a folder created 0700, and it is rotated daily
(`calls.jsonl` -> `calls.2026-06-01.jsonl`, by the day of its first event) so that old days can be purged.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
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
Redactor = Callable[[str], str]
FILE_MODE, DIR_MODE = 0o600, 0o700


def redact_value(value: object, redact: Redactor) -> object:
    """Every string inside a JSON value passed through `redact`."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: redact_value(v, redact) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(v, redact) for v in value]
    return value


def _day_of(stamp: float) -> date:
    return datetime.fromtimestamp(stamp, tz=UTC).date()


def first_event_day(path: Path) -> date | None:
    """The day of a call-log file's first event (None: no file, empty or unreadable)."""
    try:
        with path.open(encoding="utf-8") as lines:
            first = lines.readline()
        return _day_of(float(json.loads(first)["at"])) if first.strip() else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def rotated_name(path: Path, day: date) -> Path:
    """`calls.jsonl` of 2026-06-01 -> `calls.2026-06-01.jsonl` (`.1`, `.2` ... if that exists already)."""
    candidate = path.with_name(f"{path.stem}.{day.isoformat()}{path.suffix}")
    number = 1
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}.{day.isoformat()}.{number}{path.suffix}")
        number += 1
    return candidate


def rotate_call_log(path: Path, today: date) -> Path | None:
    """Move the current file aside when its first event is from an earlier day; returns where it went."""
    day = first_event_day(path)
    if day is None or day >= today:
        return None
    target = rotated_name(path, day)
    try:
        path.rename(target)
    except FileNotFoundError:  # another writer of the same file rotated it a moment ago
        return None
    return target


def rotated_call_logs(path: Path) -> list[tuple[date, Path]]:
    """The rotated files beside `path`, with their day."""
    pattern = re.compile(rf"^{re.escape(path.stem)}\.(\d{{4}}-\d{{2}}-\d{{2}})(?:\.\d+)?{re.escape(path.suffix)}$")
    found = []
    if path.parent.is_dir():
        for candidate in path.parent.iterdir():
            match = pattern.match(candidate.name)
            if match:
                try:
                    found.append((date.fromisoformat(match.group(1)), candidate))
                except ValueError:
                    continue
    return sorted(found)


def purge_call_logs(path: Path, today: date, keep_days: int) -> list[Path]:
    """Rotate a stale current file, then delete the rotated days older than `keep_days`; returns what went."""
    rotate_call_log(path, today)
    gone = []
    for day, old in rotated_call_logs(path):
        if (today - day).days > keep_days:
            old.unlink(missing_ok=True)
            gone.append(old)
    return gone


def _open_private(path: Path) -> int:
    """Open for appending; a new file (and its new folders) only for the owner."""
    missing = [folder for folder in (path.parent, *path.parent.parents) if not folder.exists()]
    for folder in reversed(missing):  # (mkdir's parents=True would create the upper ones world-readable)
        folder.mkdir(mode=DIR_MODE, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
    if os.fstat(fd).st_mode & 0o077:  # a file from before: tighten it
        os.fchmod(fd, FILE_MODE)
    return fd


class CallLog:
    """Appends events to a JSON-lines file (one shared by all calls; each line is written whole).

    Listeners (`subscribe`) see every event after it is written, e.g. the call records' buffered writer.
    They run on the caller's thread, so they must return at once; one that raises is logged and skipped.
    """

    def __init__(self, path: Path | None, *, clock: Callable[[], float] = time.time,
                 redact: Redactor | None = None) -> None:
        self.path = path
        self.clock = clock
        self.redact = redact  # what the file gets; listeners see the event as it happened
        self._lock = threading.Lock()
        self._file_day: date | None = None
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
            self._write(self.path, event)
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a broken listener must not break the call
                log.exception("call log listener %r failed on %s", listener, event.kind)
        return event


    def _write(self, path: Path, event: CallEvent) -> None:
        stored = event if self.redact is None else CallEvent(
            event.call_id, event.kind, event.at, event.call_ms,
            {k: redact_value(v, self.redact) for k, v in event.data.items()})
        line = (stored.to_json() + "\n").encode("utf-8")
        today = _day_of(event.at)
        with self._lock:
            if self._file_day != today:
                rotate_call_log(path, today)
                self._file_day = first_event_day(path) or today
            fd = _open_private(path)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)


def read_call_log(path: Path) -> list[CallEvent]:
    """Every event in a call log file, oldest first."""
    if not path.exists():
        return []
    return [CallEvent.from_json(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
