"""The buffered records writer: call-log events in, `calls` rows out, off the call path.

`submit` (and calling the writer as a `CallLog` listener) only puts the event on a bounded queue, so a call
never waits for the database. A background thread writes the queue in batches, one transaction per batch; when
the database is unreachable the batch is kept and retried with exponential backoff, so a brief outage loses
nothing. A full queue (a long outage under load) spills events to a file (`spill`, JSON lines) instead of
dropping them, and so does a shutdown while the database is away; the writer thread writes the spilled events
once the queue is quiet again, also after a restart. Without a spill file a full queue drops, counted and logged.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from callpilot.records.crm import call_ended, wrap_up_after_end
from callpilot.records.db import Database
from callpilot.records.models import CallRecord, Ticket
from callpilot.records.projection import RecordEvent, apply_event, is_wrap_up, new_record

log = logging.getLogger("callpilot.records.writer")

_STOP = object()


TicketChange = tuple[str, Ticket, CallRecord]  # ("ticket.created" | "ticket.updated", ticket, its call)
TicketSink = Callable[[str, dict[str, Any]], None]


def store_events(session: Session, events: Sequence[RecordEvent], *, retention_days: int,
                 tickets: list[TicketChange] | None = None, reused: set[str] | None = None) -> list[CallRecord]:
    """Fold events into their calls' rows (creating rows as needed); returns the rows touched.
    Tickets opened (call ended) or updated (a wrap-up after the end) are appended to `tickets`.
    A `started` event for a call id whose row has ended already is a reused id: that call's events are not
    merged into the earlier call's row (they stay in the call log); its id is added to `reused`."""
    reused = reused if reused is not None else set()
    ids = sorted({e.call_id for e in events})
    rows = {r.call_id: r for r in session.scalars(select(CallRecord).where(CallRecord.call_id.in_(ids)))}
    for event in events:
        row = rows.get(event.call_id)
        if event.event == "started" and row is not None and row.ended_at is not None:
            reused.add(event.call_id)
            log.error("call id %s was used again by a new call: its events stay out of the earlier call's record",
                      event.call_id)
        if event.call_id in reused and not is_wrap_up(event):
            continue
        if row is None:
            row = rows[event.call_id] = new_record(event, retention_days=retention_days)
            session.add(row)
        was_over = row.ended_at is not None
        apply_event(row, event)
        if event.event == "ended":
            session.flush()
            ticket = call_ended(session, row)
            if tickets is not None:
                tickets.append(("ticket.created", ticket, row))
        elif was_over and is_wrap_up(event):
            ticket = wrap_up_after_end(session, row)
            if tickets is not None:
                tickets.append(("ticket.updated", ticket, row))
    return list(rows.values())


def ticket_payload(ticket: Ticket, row: CallRecord) -> dict[str, Any]:
    """What the CRM receives about a ticket: the ticket and the call's outcome (text already redacted)."""
    return {
        "ticket_id": ticket.id, "call_id": ticket.call_id, "customer_id": ticket.customer_id,
        "caller_number": ticket.caller_number, "subject": ticket.subject, "body": ticket.body,
        "status": ticket.status, "created_at": ticket.created_at.isoformat() if ticket.created_at else None,
        "call": {"channel": row.channel, "status": row.status, "duration_s": row.duration_s,
                 "contained": row.contained, "queue": row.queue, "agent_id": row.agent_id,
                 "disposition": row.disposition, "intents": list(row.intents)},
    }


def spill_lines(events: Sequence[RecordEvent]) -> str:
    """Events as the spill file keeps them: one JSON object a line."""
    return "".join(json.dumps({"call_id": e.call_id, "event": e.event, "at": e.at.isoformat(), "data": dict(e.data)},
                              ensure_ascii=False, default=str) + "\n" for e in events)


@dataclass
class WriterStats:
    written: int = 0
    retries: int = 0
    dropped: int = 0
    failed: int = 0  # events the database refused (bad data), logged and skipped
    spilled: int = 0  # events kept on disk (full queue, or shutdown during an outage)
    replayed: int = 0  # spilled events written since


class RecordWriter:
    """Writes call events to the records database from a background thread (see the module docstring)."""

    def __init__(
        self,
        database: Database,
        *,
        retention_days: int = 90,
        # Limits
        max_queue: int = 10_000,
        batch_size: int = 200,
        # Retries
        first_retry_s: float = 0.2,
        longest_retry_s: float = 30.0,
        spill: Path | None = None,
        # Called (on the writer thread) for each ticket opened or updated, once its transaction is committed.
        on_ticket: TicketSink | None = None,
    ) -> None:
        self.spill = spill
        self._spill_lock = threading.Lock()
        self.database = database
        self.retention_days = retention_days
        self.batch_size = batch_size
        self.first_retry_s, self.longest_retry_s = first_retry_s, longest_retry_s
        self.stats = WriterStats()
        self._reused: set[str] = set()  # call ids a second call came with (kept out of the first call's row)
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        self._unfinished = 0
        self._idle = threading.Condition()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self.on_ticket = on_ticket

    def start(self) -> RecordWriter:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True, name="records-writer")
            self._thread.start()
        return self

    def __call__(self, call_event: Any) -> None:
        """A `CallLog` listener: `call_log.subscribe(writer)`."""
        self.submit(RecordEvent.from_call_event(call_event))

    def record_wrap_up(self, outcome: dict[str, Any]) -> None:
        """The handoff service's outcome sink: a wrap-up {"call_id", "agent_id", "disposition", "notes", "at",
        ...}, or {"kind": "caller_lost", ...} for a call whose caller side died with its process."""
        at = outcome.get("at")
        when = datetime.fromtimestamp(float(at), UTC) if isinstance(at, int | float) else datetime.now(UTC)
        details = {k: v for k, v in outcome.items() if k not in ("kind", "call_id", "at")}
        kind = "caller_lost" if outcome.get("kind") == "caller_lost" else "wrap_up"
        self.submit(RecordEvent(str(outcome["call_id"]), kind, when, details))

    def record_callback(self, request: Any) -> None:
        """A callback's attempt or final state (`handoff.model.CallbackRequest`), on the call that asked for it."""
        if request.context is None:
            return  # scheduled by a supervisor: no call of its own to keep it on
        details = {"state": request.state, "attempts": request.attempts, "outcomes": list(request.outcomes),
                   "next_attempt_at": request.next_attempt_at if request.state == "pending" else None,
                   "callback_call_id": request.callback_call_id}
        self.submit(RecordEvent(str(request.call_id), "callback", datetime.now(UTC), details))

    def submit(self, event: RecordEvent) -> bool:
        """Queue an event; never blocks. False (and counted as dropped) when the queue is full."""
        with self._idle:
            self._unfinished += 1
        try:
            self._queue.put_nowait(event)
            return True
        except queue.Full:
            self._done(1)
            if self.spill is not None and self._spill([event], sync=False):
                return True
            self.stats.dropped += 1
            log.error("records queue full: dropped %s event of call %s", event.event, event.call_id)
            return False

    def _spill(self, events: Sequence[RecordEvent], *, sync: bool = True) -> bool:
        """Append events to the spill file (fsynced when `sync`: not on the call path, where `submit` runs on the
        event loop: there the OS writes it out); False if the disk refused."""
        assert self.spill is not None
        lines = spill_lines(events)
        try:
            with self._spill_lock:
                self.spill.parent.mkdir(parents=True, exist_ok=True)
                with self.spill.open("a", encoding="utf-8") as out:
                    out.write(lines)
                    out.flush()
                    if sync:
                        os.fsync(out.fileno())
        except OSError:
            log.exception("records spill file %s cannot be written", self.spill)
            return False
        if self.stats.spilled == 0:
            log.warning("records queue full or database away: events are kept in %s until they are written", self.spill)
        self.stats.spilled += len(events)
        return True

    def _replay_spill(self) -> None:
        """On the writer thread, when the queue is quiet: write what was spilled, oldest first."""
        if self.spill is None or self._closing.is_set():
            return
        replaying = self.spill.with_name(self.spill.name + ".replaying")
        if not self.spill.exists() and not replaying.exists():
            return
        with self._spill_lock:
            if not replaying.exists():  # (one left by a closing writer is replayed first)
                os.replace(self.spill, replaying)
        events: list[RecordEvent] = []
        for line in replaying.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                raw = json.loads(line)
                events.append(RecordEvent(str(raw["call_id"]), str(raw["event"]), datetime.fromisoformat(raw["at"]),
                                          dict(raw.get("data") or {})))
            except (ValueError, KeyError, TypeError):
                log.error("records spill file: unreadable line skipped: %.120s", line)
        for start in range(0, len(events), self.batch_size):
            if not self._write_with_retries(events[start : start + self.batch_size], spill=False):
                # closing during an outage: what is not written yet stays in the file for the next start
                replaying.write_text(spill_lines(events[start:]), encoding="utf-8")
                return
            self.stats.replayed += len(events[start : start + self.batch_size])
        replaying.unlink(missing_ok=True)

    @property
    def pending(self) -> int:
        """Events submitted but not yet written."""
        return self._unfinished

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything submitted so far is written (False on timeout)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._unfinished == 0, timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued (for up to `timeout` seconds), then stop the thread."""
        if self._thread is None:
            return
        self.flush(timeout)
        self._closing.set()
        self._queue.put(_STOP)
        self._thread.join(timeout)
        left = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                left.append(item)
        if left and self.spill is not None and self._spill(left):
            log.warning("records writer stopped: %d events kept in %s for the next start", len(left), self.spill)
            self._done(len(left))
        if self._unfinished:
            log.error("records writer stopped with %d events not written", self._unfinished)
        self._thread = None

    def _done(self, count: int) -> None:
        with self._idle:
            self._unfinished -= count
            self._idle.notify_all()

    def _next_batch(self) -> list[RecordEvent] | None:
        while True:
            try:
                first = self._queue.get(timeout=1.0)
                break
            except queue.Empty:
                self._replay_spill()  # quiet: write what a full queue (or a restart) left on disk
        if first is _STOP:
            return None
        batch: list[RecordEvent] = [first]
        while len(batch) < self.batch_size:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                self._queue.put(_STOP)
                break
            batch.append(item)
        return batch

    def _run(self) -> None:
        self._replay_spill()  # what the last run left
        while (batch := self._next_batch()) is not None:
            self._write_with_retries(batch)
            self._done(len(batch))

    def _write_with_retries(self, batch: list[RecordEvent], *, spill: bool = True) -> bool:
        """True once written (or its bad events isolated); False when closing during an outage (then the batch
        is spilled to disk when there is a spill file, else lost and logged)."""
        failures = 0
        while True:
            tickets: list[TicketChange] = []
            try:
                with self.database.session() as session:
                    store_events(session, batch, retention_days=self.retention_days, tickets=tickets,
                                 reused=self._reused)
                self.stats.written += len(batch)
                self._deliver(tickets)
                return True
            except (OperationalError, InterfaceError, DisconnectionError) as exc:
                failures += 1
                self.stats.retries += 1
                delay = min(self.longest_retry_s, self.first_retry_s * 2 ** (failures - 1))
                log.warning("records database unavailable (%s); %d events kept, retrying in %.1f s",
                            type(exc).__name__, len(batch), delay)
                if self._closing.wait(delay):
                    if spill and self.spill is not None and self._spill(batch):
                        log.warning("records writer closing: %d events kept in %s", len(batch), self.spill)
                    else:
                        log.error("records writer closing: %d events of a batch not written", len(batch))
                    return False
            except Exception:  # the database refused the data (or a bug): isolate the bad event
                self._write_one_by_one(batch)
                return True

    def _write_one_by_one(self, batch: list[RecordEvent]) -> None:
        """A batch the database refused: write what it accepts, log and skip the rest."""
        for event in batch:
            tickets: list[TicketChange] = []
            try:
                with self.database.session() as session:
                    store_events(session, [event], retention_days=self.retention_days, tickets=tickets)
                self.stats.written += 1
                self._deliver(tickets)
            except Exception:
                self.stats.failed += 1
                log.exception("records: could not store %s event of call %s", event.event, event.call_id)

    def _deliver(self, tickets: list[TicketChange]) -> None:
        """Hand committed tickets to `on_ticket` (which only queues them); a failure there is logged."""
        if self.on_ticket is None:
            return
        for kind, ticket, row in tickets:
            try:
                self.on_ticket(kind, ticket_payload(ticket, row))
            except Exception:
                log.exception("records: could not hand on %s for call %s", kind, ticket.call_id)
