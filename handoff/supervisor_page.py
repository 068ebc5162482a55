"""The supervisor page (`/supervisor`) and its data (`/supervisor/api/snapshot`, `/supervisor/events`),
behind a supervisor or admin API key.

The key comes as `Authorization: Bearer <key>` or, for the browser, from the sign-in form, which opens a
server-side session: the HttpOnly, SameSite=Strict cookie scoped to `/supervisor` holds only the session id
(expiring, revocable, `Secure` over https), never the key. Keys and sessions are checked by a `SupervisorAuth`
(callpilot wires the records' API keys and web sessions), so this module knows no database. An open event
stream re-checks its key or session before each event and ends once it is revoked.
"""

from __future__ import annotations

import asyncio
import html
import json
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from handoff.desk_parts import (
    COOKIE,
    DeskParts,
    Parts,
    day_start_param,
    presented,
    web_file,
)
from handoff.errors import UnknownQueue

REFRESH_S = 1.0
COOKIE_MAX_AGE_S = 12 * 3600


router = APIRouter()


def secure(parts: DeskParts, request: Request) -> bool:
    auth = parts.supervisor_auth
    return request.url.scheme == "https" or bool(auth is not None and auth.secure_cookie)


def sign_in_page(message: str, status: int) -> HTMLResponse:
    return HTMLResponse(web_file("supervisor_login.html").replace("{{message}}", html.escape(message)),
                        status_code=status)


@router.get("/supervisor")
async def supervisor_page(parts: Parts, request: Request) -> HTMLResponse:
    """The floor, or the sign-in form: a page to fill in, so 200 (a refused key is said on it)."""
    credential = presented(request)
    status, message = await parts.gate.verdict(credential)
    if status == 503:
        return sign_in_page(message, status)
    if status != 200:
        return sign_in_page("" if credential is None else message, 200)
    return HTMLResponse(web_file("supervisor.html"))


@router.post("/supervisor/login")
async def supervisor_login(parts: Parts, request: Request) -> Response:
    form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
    key = form.get("key", "").strip()
    status, message = await parts.gate.verdict(("key", key) if key else None)
    auth = parts.supervisor_auth
    if status != 200 or auth is None:
        return sign_in_page(message, status)
    response = RedirectResponse("/supervisor", status_code=303)
    response.set_cookie(COOKIE, await auth.open_session(key), httponly=True, samesite="strict",
                        path="/supervisor", secure=secure(parts, request), max_age=COOKIE_MAX_AGE_S)
    return response


@router.post("/supervisor/logout")
async def supervisor_logout(parts: Parts, request: Request) -> Response:
    """Ends the session on the server too, so a copied cookie is worthless afterwards."""
    session_id = request.cookies.get(COOKIE)
    auth = parts.supervisor_auth
    if session_id and auth is not None:
        await auth.close_session(session_id)
    response = RedirectResponse("/supervisor", status_code=303)
    response.delete_cookie(COOKIE, path="/supervisor", secure=secure(parts, request), httponly=True, samesite="strict")
    return response


@router.get("/supervisor/api/snapshot")
async def snapshot(parts: Parts, request: Request) -> dict[str, Any]:
    await parts.gate.require(request)
    return asdict(await parts.service().snapshot())


@router.get("/supervisor/api/wallboard")
async def wallboard(parts: Parts, request: Request, today: str | None = None) -> dict[str, Any]:
    """Today's numbers per queue (from the records; empty without them) and the amber / red thresholds.
    `today`: the start of the supervisor's day with its UTC offset (default: midnight UTC)."""
    await parts.gate.require(request)
    starts = day_start_param(today)
    numbers = await parts.queue_day.today(starts) if parts.queue_day is not None else {}
    thresholds = {name: t.model_dump() for name, t in parts.service().config.wallboard.items()}
    return {"queues": numbers, "thresholds": thresholds}


@router.get("/supervisor/api/divert")
async def divert_status(parts: Parts, request: Request) -> dict[str, Any]:
    """Whether new calls go to the backup number, and why (switch, voice_loading, voice_failed, asr_unhealthy)."""
    await parts.gate.require(request)
    return parts.divert.status() if parts.divert is not None else {"backup_number": None, "diverting": False}


@router.post("/supervisor/api/divert")
async def divert_switch(parts: Parts, request: Request) -> dict[str, Any]:
    """{"on": true}: every new call goes to the backup number until {"on": false}."""
    await parts.gate.require(request)
    divert = parts.divert
    if divert is None or divert.status().get("backup_number") is None:
        raise HTTPException(409, "no backup number is configured (setting backup_number)")
    try:
        body = json.loads(await request.body() or b"{}")
        on = body["on"]
        if not isinstance(on, bool):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise HTTPException(400, 'send {"on": true} or {"on": false}') from None
    try:
        await divert.set_switch(on)
    except RuntimeError as exc:
        raise HTTPException(503, str(exc)) from None
    return divert.status()


@router.post("/supervisor/api/callbacks")
async def callback_schedule(parts: Parts, request: Request) -> dict[str, Any]:
    """Schedule a callback: {"number": "+8613812345678" or "sip:...", "queue": "orders", "at": Unix seconds
    (optional: else as soon as an agent of the queue is free)}; callpilot dials it."""
    await parts.gate.require(request)
    try:
        body = json.loads(await request.body() or b"{}")
        if not isinstance(body, dict):
            raise ValueError("expected a JSON object")
        at = body.get("at")
        scheduled = await parts.service().schedule_callback(str(body.get("number") or ""),
                                                      str(body.get("queue") or ""),
                                                      due_at=None if at is None else float(at))
    except UnknownQueue as exc:
        raise HTTPException(404, str(exc)) from None
    except (ValueError, TypeError) as exc:
        raise HTTPException(400, str(exc)) from None
    return scheduled.to_dict()


@router.post("/supervisor/api/callbacks/{call_id}/done")
async def callback_done(parts: Parts, call_id: str, request: Request) -> dict[str, Any]:
    """A supervisor made (or handed out) the callback: off the list."""
    await parts.gate.require(request)
    if not await parts.service().callbacks.done(call_id):
        raise HTTPException(404, f"no callback requested for call {call_id!r}")
    return {"done": call_id}


@router.get("/supervisor/events")
async def supervisor_events(parts: Parts, request: Request) -> StreamingResponse:
    """Server-sent events: the floor (queues, agents, live calls, callbacks) every second, while the key or
    session that opened the stream stays valid (re-checked before each event)."""
    credential = await parts.gate.require(request)
    running = parts.service()

    async def stream() -> AsyncIterator[str]:
        while not await request.is_disconnected():
            status, message = await parts.gate.verdict(credential)
            if status != 200:
                yield f"event: signed_out\ndata: {json.dumps({'status': status, 'detail': message})}\n\n"
                return
            view = await running.snapshot()
            yield f"event: snapshot\ndata: {json.dumps(asdict(view), default=str)}\n\n"
            await asyncio.sleep(REFRESH_S)

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})
