"""The call history pages: `/calls` (search, paged, CSV export) and `/calls/{id}` (timeline, transcript,
recording player, ticket). Signed in like the dashboard (an API key once, then a server-side session in an
HttpOnly cookie scoped to `/calls`); supervisors and admins see every call, an agent key only its own calls
and no recordings. Every read is audited (`history.audit`)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from callpilot.ops import dashboard, history
from callpilot.records.apikeys import Principal, verify_key
from callpilot.records.db import Database
from callpilot.records.models import CallRecord
from callpilot.records.web_sessions import SESSION_LIFETIME, close_session, secure_cookies, sign_in
from callpilot.records.web_sessions import session_principal as principal_of_session

COOKIE, SCOPE, PATH = "callpilot_calls", "calls", "/calls"
ROLES = ("supervisor", "admin", "agent")
RECORDING_ROLES = ("supervisor", "admin")
OUTCOME_LABELS = (("contained", "contained by the bot"), ("handed_over", "handed over"), ("abandoned", "abandoned"))


def records_database(connection: HTTPConnection) -> Database:
    """The app's records database (put on `app.state` by `mount_records`); 503 without one."""
    found: Database | None = getattr(connection.app.state, "database", None)
    if found is None:
        raise HTTPException(503, "the records database is not configured")
    return found


Db = Annotated[Database, Depends(records_database)]
router = APIRouter()


def mount_history(app: FastAPI) -> None:
    """Add the call history routes (over the app's records database)."""
    app.include_router(router)


def signed_in(request: Request, database: Database) -> Principal | None:
    header = request.headers.get("authorization", "")
    key = header[7:].strip() if header.lower().startswith("bearer ") else None
    session_id = None if key else request.cookies.get(COOKIE)
    if not (key or session_id):
        return None
    with database.session() as session:
        who = verify_key(session, key) if key else principal_of_session(session, session_id or "", SCOPE)
    return who if who is not None and who.role in ROLES else None


def login_page(error: str | None = None, status: int = 200) -> HTMLResponse:
    return HTMLResponse(dashboard.render_login(
        error, page="Call history", action="/calls/login",
        who="With a supervisor or admin API key (an agent key shows the agent's own calls)"), status_code=status)


def who_line(who: Principal) -> str:
    return f"{who.name or who.key_id} ({who.role}{', ' + who.agent_id if who.agent_id else ''})"


@router.get("/calls", response_class=HTMLResponse, include_in_schema=False)
async def calls_page(request: Request, database: Db) -> HTMLResponse:
    who = await asyncio.to_thread(signed_in, request, database)
    if who is None:
        return login_page()
    error, search = None, history.CallSearch()
    try:
        search = history.CallSearch.from_query(dict(request.query_params))
    except history.SearchError as exc:
        error = str(exc)

    def read() -> tuple[int, list[CallRecord], list[str]]:
        with database.session() as session:
            total, rows = history.search_calls(session, search, who)
            names = sorted({n for r in session.scalars(select(CallRecord.intents).limit(2000)) for n in r or []})
            history.audit(session, who, "calls.search", "", **search.described())
            session.flush()  # the audit entry is written before the rows are detached for the template
            session.expunge_all()
            return total, rows, names

    total, rows, intents = await asyncio.to_thread(read)
    pages = max(1, -(-total // history.PAGE_SIZE))
    return HTMLResponse(dashboard.render_page("calls.html", {
        "rows": rows, "total": total, "pages": pages, "search": search, "error": error,
        "intents": intents, "outcomes": OUTCOME_LABELS, "outcome_of": history.outcome_of,
        "export_query": search.query_string(page=1), "who": who_line(who),
        "can_pick_agent": who.role != "agent"}), status_code=400 if error else 200)


@router.get("/calls/export.csv", include_in_schema=False)
async def calls_csv(request: Request, database: Db) -> Response:
    who = await asyncio.to_thread(signed_in, request, database)
    if who is None:
        raise HTTPException(401, "sign in at /calls first")
    try:
        search = history.CallSearch.from_query(dict(request.query_params))
    except history.SearchError as exc:
        raise HTTPException(400, str(exc)) from None

    def read() -> str:
        with database.session() as session:
            _, rows = history.search_calls(session, search, who, page_size=history.MAX_EXPORT)
            history.audit(session, who, "calls.export", "", rows=len(rows), **search.described())
            return history.export_csv(rows)

    return Response(await asyncio.to_thread(read), media_type="text/csv",
                    headers={"content-disposition": 'attachment; filename="calls.csv"'})


def visible(session: Session, call_id: str, who: Principal) -> CallRecord:
    row = session.scalar(select(CallRecord).where(CallRecord.call_id == call_id))
    if row is None or (who.role == "agent" and (not who.agent_id or row.agent_id != who.agent_id)):
        raise HTTPException(404, f"no call {call_id!r}")
    return row


def recording_state(row: CallRecord, who: Principal) -> str:
    if row.recording_path is None:
        if row.recording_purged_at is not None:
            return f"Deleted on {row.recording_purged_at:%Y-%m-%d} (kept {row.retention_days} days)."
        return "This call was not recorded."
    if who.role not in RECORDING_ROLES:
        return "Recordings are for supervisors and admins."
    return "playable" if Path(row.recording_path).is_file() else "The recording file is missing."


@router.get("/calls/{call_id}", response_class=HTMLResponse, include_in_schema=False)
async def call_page(call_id: str, request: Request, database: Db) -> HTMLResponse:
    who = await asyncio.to_thread(signed_in, request, database)
    if who is None:
        return login_page()

    def read() -> dict[str, Any]:
        with database.session() as session:
            row = visible(session, call_id, who)
            values = {"row": row, "events": history.timeline(row), "outcome": history.outcome_of(row),
                      "summary": (row.extra or {}).get("handoff_summary"),
                      "ticket": history.ticket_of(session, call_id),
                      "recording": recording_state(row, who), "who": who_line(who)}
            history.audit(session, who, "call.view", call_id)
            session.flush()  # the audit entry is written before the rows are detached for the template
            session.expunge_all()
            return values

    return HTMLResponse(dashboard.render_page("call.html", await asyncio.to_thread(read)))


@router.get("/calls/{call_id}/recording.wav", include_in_schema=False)
async def recording(call_id: str, request: Request, database: Db) -> Response:
    who = await asyncio.to_thread(signed_in, request, database)
    if who is None:
        raise HTTPException(401, "sign in at /calls first")

    def read() -> Path:
        with database.session() as session:
            row = visible(session, call_id, who)
            state = recording_state(row, who)
            if state != "playable":
                raise HTTPException(403 if who.role not in RECORDING_ROLES else 404, state)
            if request.headers.get("range", "bytes=0-") == "bytes=0-":  # a play (its seeks are not new reads)
                history.audit(session, who, "recording.play", call_id)
            return Path(row.recording_path or "")

    return FileResponse(await asyncio.to_thread(read), media_type="audio/wav")


@router.post("/calls/login", include_in_schema=False)
async def calls_login(request: Request, database: Db) -> Response:
    key = dict(parse_qsl((await request.body()).decode("utf-8", "replace"))).get("key", "").strip()
    who, session_id = await asyncio.to_thread(sign_in, database, key, ROLES, SCOPE)
    if who is None or session_id is None:
        why = "unknown or revoked API key" if who is None else f"role {who.role!r} may not see calls"
        return login_page(why, 401)
    response = RedirectResponse("/calls", status_code=303)
    response.set_cookie(COOKIE, session_id, httponly=True, samesite="strict", path=PATH,
                        secure=request.url.scheme == "https" or secure_cookies(request.app.state.settings.public_url),
                        max_age=int(SESSION_LIFETIME.total_seconds()))
    return response


@router.post("/calls/logout", include_in_schema=False)
async def calls_logout(request: Request, database: Db) -> Response:
    session_id = request.cookies.get(COOKIE)
    if session_id:
        def close() -> None:
            with database.session() as session:
                close_session(session, session_id)

        await asyncio.to_thread(close)
    response = RedirectResponse("/calls", status_code=303)
    response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="strict")
    return response
