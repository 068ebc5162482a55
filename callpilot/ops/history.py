"""The call history: find past calls and read one (`/calls`, `/calls/{id}`), for supervisors and admins; an
agent sees only the calls they took.

`CallSearch` is the search form as a typed value (from the page's query string, with a clear error for a bad
value); `search_calls` runs it against the records; `timeline` turns one call record into what happened, in
order. Every read - a search, a call opened, a recording played, an export - is written to the audit log.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, false, func, select
from sqlalchemy.orm import Session

from callpilot.records.apikeys import Principal
from callpilot.records.models import AuditEntry, CallRecord, Ticket
from callpilot.records.projection import caller_number

OUTCOMES = ("contained", "handed_over", "abandoned")
PAGE_SIZE = 25
MAX_EXPORT = 10_000


class SearchError(ValueError):
    """A search form value that cannot be used (the page shows the message)."""


@dataclass(frozen=True)
class CallSearch:
    """What the search form asks for; empty fields do not filter."""

    start: str = ""  # ISO date or date-time (UTC)
    end: str = ""
    caller: str = ""
    queue: str = ""
    agent: str = ""
    intent: str = ""
    outcome: str = ""  # contained | handed_over | abandoned
    language: str = ""
    min_s: str = ""
    max_s: str = ""
    page: int = 1

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> CallSearch:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(query) - known)
        if unknown:
            raise SearchError(f"unknown search field {', '.join(unknown)}; the form has {', '.join(sorted(known))}")
        values: dict[str, Any] = {k: str(v).strip()[:64] for k, v in query.items() if k != "page"}
        try:
            page = int(query.get("page") or 1)
        except ValueError:
            raise SearchError(f"page={query.get('page')!r}: expected a page number") from None
        search = cls(**values, page=max(1, page))
        search.check()
        return search

    def check(self) -> None:
        self.window()
        if self.outcome and self.outcome not in OUTCOMES:
            raise SearchError(f"outcome={self.outcome!r}: expected one of {', '.join(OUTCOMES)}")
        for name in ("min_s", "max_s"):
            raw = getattr(self, name)
            if raw and not raw.replace(".", "", 1).isdigit():
                raise SearchError(f"{name}={raw!r}: expected seconds, e.g. 30")

    def window(self) -> tuple[datetime | None, datetime | None]:
        """The date range; a date alone for `end` includes that whole day."""
        return _when("from", self.start, end=False), _when("to", self.end, end=True)

    def query_string(self, **change: Any) -> str:
        """The search as a query string (for paging and the export link), with `change` applied."""
        values = {**asdict(self), **change}
        from urllib.parse import urlencode

        return urlencode({k: v for k, v in values.items() if v not in ("", None) and not (k == "page" and v == 1)})

    def described(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items() if v not in ("", 1)}


def _when(name: str, raw: str, *, end: bool) -> datetime | None:
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise SearchError(f"{name}={raw!r}: expected a date such as 2026-12-03 or 2026-12-03T09:00") from None
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if end and len(raw) <= 10:  # a date: up to the end of that day
        value += timedelta(days=1)
    return value


def visible_to(principal: Principal) -> ColumnElement[bool] | None:
    """An agent sees only the calls they took (None: every call)."""
    if principal.role != "agent":
        return None
    return false() if not principal.agent_id else CallRecord.agent_id == principal.agent_id


def _filtered(search: CallSearch, principal: Principal) -> Any:
    query = select(CallRecord)
    if (own := visible_to(principal)) is not None:
        query = query.where(own)
    start, end = search.window()
    if start is not None:
        query = query.where(CallRecord.started_at >= start)
    if end is not None:
        query = query.where(CallRecord.started_at < end)
    if search.caller:
        query = query.where(CallRecord.caller_number == caller_number(search.caller))
    for column, value in ((CallRecord.queue, search.queue), (CallRecord.agent_id, search.agent),
                          (CallRecord.language, search.language)):
        if value:
            query = query.where(column == value)
    if search.outcome == "contained":
        query = query.where(CallRecord.contained.is_(True))
    elif search.outcome == "handed_over":
        query = query.where(CallRecord.contained.is_(False), CallRecord.status != "abandoned")
    elif search.outcome == "abandoned":
        query = query.where(CallRecord.status == "abandoned")
    if search.min_s:
        query = query.where(CallRecord.duration_s >= float(search.min_s))
    if search.max_s:
        query = query.where(CallRecord.duration_s <= float(search.max_s))
    return query


def search_calls(session: Session, search: CallSearch, principal: Principal, *,
                 page_size: int = PAGE_SIZE) -> tuple[int, list[CallRecord]]:
    """(matches in all, the rows of the search's page), newest first. The intent filter runs on the stored
    intent lists, so it is applied in Python over the matches of the other filters."""
    query = _filtered(search, principal).order_by(CallRecord.started_at.desc(), CallRecord.id.desc())
    if search.intent:
        rows = [r for r in session.scalars(query.limit(MAX_EXPORT)) if search.intent in (r.intents or [])]
        first = (search.page - 1) * page_size
        return len(rows), rows[first:first + page_size]
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    return total, list(session.scalars(query.limit(page_size).offset((search.page - 1) * page_size)))


def outcome_of(row: CallRecord) -> str:
    if row.status == "in_progress":
        return "in progress"
    if row.status == "abandoned":
        return "abandoned"
    return "contained by the bot" if row.contained else "handed over" if row.contained is False else row.status


CSV_COLUMNS = ("call_id", "started_at", "caller_number", "channel", "language", "outcome", "duration_s",
               "queue", "agent_id", "disposition", "intents")


def export_csv(rows: list[CallRecord]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([row.call_id, row.started_at.isoformat(), row.caller_number or "", row.channel,
                         row.language or "", outcome_of(row), row.duration_s if row.duration_s is not None else "",
                         row.queue or "", row.agent_id or "", row.disposition or "", " ".join(row.intents or [])])
    return out.getvalue()


def timeline(row: CallRecord) -> list[dict[str, Any]]:
    """What happened in the call, in order: start, menu choices, each turn (the caller's with the intent and
    confidence the NLU gave), the handoff, the agent, the end and the wrap-up."""
    events: list[dict[str, Any]] = [{"at": row.started_at, "what": "call started", "detail": row.transport or ""}]
    if row.ivr_path:
        events.append({"at": row.started_at, "what": "keypad menus", "detail": " > ".join(map(str, row.ivr_path))})
    for line in row.transcript or []:
        detail = ""
        if line.get("intent"):
            confidence = line.get("confidence")
            detail = str(line["intent"]).replace("_", " ") + (f" ({confidence:.2f})" if confidence else "")
        events.append({"at": _parse(line.get("at")) or row.started_at, "what": str(line.get("speaker", "")),
                       "text": str(line.get("text", "")), "detail": detail,
                       "interrupted": bool(line.get("interrupted"))})
    if row.handoff_at:
        events.append({"at": row.handoff_at, "what": "handed over",
                       "detail": f"{row.queue or ''} ({(row.handoff_reason or '').replace('_', ' ')})"})
    if row.agent_connected_at:
        events.append({"at": row.agent_connected_at, "what": "agent answered",
                       "detail": row.agent_name or row.agent_id or ""})
    if row.ended_at:
        events.append({"at": row.ended_at, "what": "call ended", "detail": (row.end_reason or "").replace("_", " ")})
    if row.disposition or row.notes:
        events.append({"at": row.ended_at or row.started_at, "what": "wrap-up",
                       "detail": " - ".join(x for x in (row.disposition, row.notes) if x)})
    return sorted(events, key=lambda e: _aware(e["at"]))


def _parse(raw: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(raw))
    except ValueError:
        return None


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def ticket_of(session: Session, call_id: str) -> Ticket | None:
    return session.scalar(select(Ticket).where(Ticket.call_id == call_id).order_by(Ticket.id.desc()).limit(1))


def audit(session: Session, principal: Principal, action: str, target: str = "", **detail: Any) -> None:
    """Who looked at what, when (every read of the call history)."""
    session.add(AuditEntry(actor=principal.actor, action=action, target=target, detail=detail))
