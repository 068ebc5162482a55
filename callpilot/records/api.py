"""The `/api/v1` records routes: calls, transcripts, recordings, agents, queues, contacts, tickets, audit.

Every route names the roles it allows with `require_role` (admin passes all of them). Recordings are for
supervisors and admins only; each download is written to the audit log. An agent key sees only its agent's
calls (and their tickets), and only the contact of a caller it talks to, is offered, or talked to before.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import FileResponse
from sqlalchemy import ColumnElement, false, func, select
from sqlalchemy.orm import Session

from callpilot.records.apikeys import Principal
from callpilot.records.auth import require_role
from callpilot.records.crm import call_ended
from callpilot.records.db import get_session
from callpilot.records.models import AuditEntry, CallRecord, Ticket
from callpilot.records.projection import caller_number
from callpilot.records.retention import RetentionError, set_retention
from callpilot.records.schemas import (
    AuditOut,
    CallIn,
    CallOut,
    CallPage,
    CallStatus,
    ContactOut,
    RetentionIn,
    TicketOut,
    Transcript,
    TranscriptLine,
)


def known_filters_only(request: Request) -> None:
    """400 for a query parameter the route does not take (`?stauts=` must not quietly return everything)."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    known: set[str] = set()
    todo = [dependant]
    while todo:  # the route's own query parameters and its dependencies'
        part = todo.pop()
        known.update(param.alias for param in part.query_params)
        todo.extend(part.dependencies)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise HTTPException(400, f"unknown query parameter{'s' if len(unknown) > 1 else ''} "
                                 f"{', '.join(unknown)}; this route takes {', '.join(sorted(known)) or 'none'}")


SUPERVISOR = require_role("supervisor")
READ_CALLS = require_role("supervisor", "agent")
TRANSCRIPTS = require_role("supervisor", "trainer")
ADMIN = require_role("admin")
SessionDep = Annotated[Session, Depends(get_session)]


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _call(session: Session, call_id: str) -> CallRecord:
    row = session.scalar(select(CallRecord).where(CallRecord.call_id == call_id))
    if row is None:
        raise HTTPException(404, f"no call {call_id!r}")
    return row


def _own_calls(principal: Principal) -> ColumnElement[bool] | None:
    """The filter that limits an agent key to its agent's calls (None: the role sees every call)."""
    if principal.role != "agent":
        return None
    return false() if not principal.agent_id else CallRecord.agent_id == principal.agent_id


def _visible_call(session: Session, call_id: str, principal: Principal) -> CallRecord:
    """The call, or 404 also when an agent key asks for another agent's call (its existence stays unknown)."""
    row = _call(session, call_id)
    if principal.role == "agent" and (not principal.agent_id or row.agent_id != principal.agent_id):
        raise HTTPException(404, f"no call {call_id!r}")
    return row


async def _agent_knows_caller(request: Request, session: Session, principal: Principal, phone: str) -> bool:
    """Whether the number is a caller the agent talks to or is offered now (the live floor) or talked to
    before (the records)."""
    agent, number = principal.agent_id, caller_number(phone)
    if not agent or number is None:
        return False
    view = await _floor(request)
    live = [*_items(view, "live_calls"), *(c for q in _items(view, "queues") for c in _items(q, "waiting"))]
    for call in live:  # _items gives plain dicts
        if call.get("agent_id") == agent and caller_number(call.get("caller_number")) == number:
            return True
    own = select(CallRecord.id).where(CallRecord.agent_id == agent, CallRecord.caller_number == number).limit(1)
    return session.scalar(own) is not None


async def _floor(request: Request) -> Any:
    """The handoff service's snapshot (helper: `app.state.handoff`), or None when there is no handoff."""
    source = getattr(request.app.state, "handoff", None)
    if source is not None and not hasattr(source, "snapshot"):
        source = getattr(source, "service", None)
    if source is None:
        return None
    return await source.snapshot()


def _items(view: Any, name: str) -> list[Any]:
    if view is None:
        return []
    items = getattr(view, name, None)
    if items is None and isinstance(view, dict):
        items = view.get(name)
    return [asdict(i) if is_dataclass(i) and not isinstance(i, type) else i for i in items or []]


router = APIRouter(prefix="/api/v1", tags=["records"], dependencies=[Depends(known_filters_only)])


@router.get("/calls", response_model=CallPage)
def list_calls(
    session: SessionDep,
    who: Annotated[Principal, Depends(READ_CALLS)],
    start: Annotated[datetime | None, Query(alias="from", description="Started at or after (ISO 8601).")] = None,
    end: Annotated[datetime | None, Query(alias="to", description="Started before (ISO 8601).")] = None,
    caller: Annotated[str | None, Query(description="Caller number (E.164).")] = None,
    contained: Annotated[bool | None, Query(description="The bot handled it without an agent.")] = None,
    queue: str | None = None,
    agent: Annotated[str | None, Query(description="Agent id.")] = None,
    disposition: str | None = None,
    channel: Annotated[str | None, Query(description="voice, text or api.")] = None,
    status: Annotated[CallStatus | None, Query(description="in_progress, completed, abandoned ...")] = None,
    customer_id: Annotated[str | None, Query(description="The customer (contact) id.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> CallPage:
    """Calls, newest first, filtered; `total` counts all matches for paging. Agent keys: their own calls. A
    filter this route does not know is a 400."""
    query = select(CallRecord)
    if (own := _own_calls(who)) is not None:
        query = query.where(own)
    if start is not None:
        query = query.where(CallRecord.started_at >= _utc(start))
    if end is not None:
        query = query.where(CallRecord.started_at < _utc(end))
    if caller:
        query = query.where(CallRecord.caller_number == caller_number(caller))
    if contained is not None:
        query = query.where(CallRecord.contained == contained)
    for column, value in ((CallRecord.queue, queue), (CallRecord.agent_id, agent),
                          (CallRecord.disposition, disposition), (CallRecord.channel, channel),
                          (CallRecord.status, status), (CallRecord.customer_id, customer_id)):
        if value:
            query = query.where(column == value)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(CallRecord.started_at.desc(), CallRecord.id.desc())
                           .limit(limit).offset(offset))
    return CallPage(total=total, limit=limit, offset=offset, items=[CallOut.of(r) for r in rows])


@router.post("/calls", response_model=CallOut, status_code=201)
def create_call(body: CallIn, session: SessionDep, who: Annotated[Principal, Depends(SUPERVISOR)]) -> CallOut:
    """Record a call another system handled ({"customer_id", "phone_number", "call_duration", "status"})."""
    call_id = body.call_id or f"api-{uuid.uuid4().hex[:16]}"
    if session.scalar(select(CallRecord.id).where(CallRecord.call_id == call_id)) is not None:
        raise HTTPException(409, f"call {call_id!r} already exists")
    length = timedelta(seconds=body.call_duration)
    ended = datetime.now(UTC) if body.started_at is None else body.started_at + length
    started = body.started_at or ended - length
    row = CallRecord(
        call_id=call_id, channel="api", status=body.status, caller_number=body.phone_number,
        customer_id=body.customer_id, started_at=started,
        answered_at=started if body.status == "completed" else None,
        ended_at=ended, duration_s=body.call_duration, ivr_path=[], intents=[], transcript=[], turns=0,
        contained=None, queue=body.queue, agent_id=body.agent_id, disposition=body.disposition, notes=body.notes,
        recording_consent=False, extra={"created_by": who.actor},
    )
    session.add(row)
    session.flush()
    call_ended(session, row)
    return CallOut.of(row)


@router.get("/calls/{call_id}", response_model=CallOut)
def get_call(call_id: str, session: SessionDep, who: Annotated[Principal, Depends(READ_CALLS)]) -> CallOut:
    return CallOut.of(_visible_call(session, call_id, who))


@router.get("/calls/{call_id}/transcript", response_model=Transcript)
def get_transcript(call_id: str, session: SessionDep, _: Annotated[Principal, Depends(TRANSCRIPTS)]) -> Transcript:
    """The call's turns, PII-redacted (card, ID, e-mail and phone numbers)."""
    row = _call(session, call_id)
    lines = [TranscriptLine.model_validate(line) for line in row.transcript if str(line.get("text") or "").strip()]
    return Transcript(call_id=call_id, redacted=True, lines=lines)


@router.get("/calls/{call_id}/recording", response_class=FileResponse,
            responses={200: {"content": {"audio/wav": {}}}, 404: {}, 410: {"description": "Purged."}})
def get_recording(
    call_id: str, session: SessionDep, who: Annotated[Principal, Depends(SUPERVISOR)]
) -> FileResponse:
    """The stereo WAV (caller left, bot/agent right). Supervisors and admins only; audited."""
    row = _call(session, call_id)
    if row.recording_path is None:
        if row.recording_purged_at is not None:
            raise HTTPException(410, f"the recording of {call_id!r} was deleted on "
                                     f"{row.recording_purged_at.isoformat()} (retention {row.retention_days} days)")
        raise HTTPException(404, f"call {call_id!r} was not recorded")
    path = Path(row.recording_path)
    if not path.is_file():
        raise HTTPException(404, f"the recording file of {call_id!r} is missing")
    session.add(AuditEntry(actor=who.actor, action="recording.download", target=call_id,
                           detail={"path": str(path)}))
    return FileResponse(path, media_type="audio/wav", filename=f"{call_id}.wav")


@router.put("/calls/{call_id}/retention", response_model=CallOut)
def change_retention(call_id: str, body: RetentionIn, session: SessionDep,
                     who: Annotated[Principal, Depends(SUPERVISOR)]) -> CallOut:
    """Keep the recording 30, 90 or 180 days; longer only when the caller's consent is recorded."""
    row = _call(session, call_id)
    before = (row.retention_days, row.recording_consent)
    try:
        set_retention(row, body.retention_days, consent=body.consent)
    except RetentionError as exc:
        raise HTTPException(422, str(exc)) from None
    session.add(AuditEntry(actor=who.actor, action="recording.retention", target=call_id,
                           detail={"from": list(before), "to": [row.retention_days, row.recording_consent]}))
    return CallOut.of(row)


@router.get("/agents")
async def agents(request: Request, _: Annotated[Principal, Depends(SUPERVISOR)]) -> dict[str, Any]:
    """Agents and their states, from the handoff service (empty when it is not running)."""
    return {"items": jsonable_encoder(_items(await _floor(request), "agents"))}


@router.get("/queues")
async def queues(request: Request, _: Annotated[Principal, Depends(SUPERVISOR)]) -> dict[str, Any]:
    """Queues with their waiting calls, from the handoff service (empty when it is not running)."""
    return {"items": jsonable_encoder(_items(await _floor(request), "queues"))}


@router.get("/contacts", response_model=ContactOut)
async def contact(request: Request, session: SessionDep, phone: Annotated[str, Query(min_length=3)],
                  who: Annotated[Principal, Depends(READ_CALLS)]) -> ContactOut:
    """The caller's contact record (built-in table or the external CRM). Agent keys: only a caller of a
    call offered to or taken by their agent."""
    if who.role == "agent" and not await _agent_knows_caller(request, session, who, phone):
        raise HTTPException(403, "an agent key sees only the contact of a caller offered to or taken by its "
                                 "agent")
    lookup = getattr(request.app.state, "contacts", None)
    found = await lookup.by_number(phone) if lookup is not None else None
    if found is None:
        raise HTTPException(404, f"no contact with phone {phone!r}")
    return ContactOut.model_validate(asdict(found))


@router.get("/tickets", response_model=list[TicketOut])
def tickets(session: SessionDep, who: Annotated[Principal, Depends(READ_CALLS)],
            call_id: str | None = None, status: str | None = None,
            limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[TicketOut]:
    """Tickets, newest first. Agent keys: the tickets of their own calls."""
    query = select(Ticket).order_by(Ticket.id.desc()).limit(limit)
    if (own := _own_calls(who)) is not None:
        query = query.where(Ticket.call_id.in_(select(CallRecord.call_id).where(own)))
    if call_id:
        query = query.where(Ticket.call_id == call_id)
    if status:
        query = query.where(Ticket.status == status)
    return [TicketOut.model_validate(t) for t in session.scalars(query)]


@router.get("/audit", response_model=list[AuditOut])
def audit(session: SessionDep, _: Annotated[Principal, Depends(ADMIN)], action: str | None = None,
          limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[AuditOut]:
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if action:
        query = query.where(AuditEntry.action == action)
    return [AuditOut.model_validate(a) for a in session.scalars(query)]
