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
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import parse_qsl

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.requests import HTTPConnection

from handoff.errors import UnknownQueue
from handoff.service import HandoffService

SUPERVISOR_ROLES = ("supervisor", "admin")
COOKIE = "callpilot_supervisor"
REFRESH_S = 1.0
COOKIE_MAX_AGE_S = 12 * 3600


class SupervisorAuth(Protocol):
    """API keys and browser sessions for `/supervisor`; roles are None for unknown, revoked or expired ones."""

    secure_cookie: bool  # mark the cookie Secure even over plain http (the public URL is https behind a proxy)

    async def role_of_key(self, key: str) -> str | None: ...

    async def open_session(self, key: str) -> str:
        """A new session id for a valid key (kept server-side; the cookie holds only the id)."""
        ...

    async def role_of_session(self, session_id: str) -> str | None: ...

    async def close_session(self, session_id: str) -> None: ...

    async def audit(self, credential: tuple[str, str], action: str, target: str, detail: dict[str, Any]) -> None:
        """Record who (the key or session in `credential`) did `action` to `target`."""
        ...


def presented(request: HTTPConnection) -> tuple[str, str] | None:
    """("key", API key) from the bearer header, else ("session", id) from the cookie, else None."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer ") and header[7:].strip():
        return "key", header[7:].strip()
    session_id = request.cookies.get(COOKIE)
    return ("session", session_id) if session_id else None


class DivertSwitch(Protocol):
    """The backup number's switch (callpilot.divert.Divert)."""

    async def set_switch(self, on: bool) -> None: ...

    def status(self) -> dict[str, Any]: ...


def day_start_param(today: str | None) -> datetime | None:
    """The browser's "start of my day" (`?today=`, ISO with its UTC offset); 400 for anything else."""
    try:
        starts = datetime.fromisoformat(today) if today else None
    except ValueError:
        raise HTTPException(400, f"today={(today or '')[:40]!r}: expected an ISO date-time") from None
    if starts is not None and starts.tzinfo is None:
        raise HTTPException(400, "today needs its UTC offset (e.g. 2026-12-04T00:00:00+08:00)")
    return starts


class QueueDay(Protocol):
    """Today's numbers per queue from the call records (callpilot.wallboard): offered, answered, abandoned,
    service_level, asa_s."""

    async def today(self, today_starts: datetime | None = None) -> dict[str, dict[str, Any]]: ...


class SupervisorGate:
    """Who may use the supervisor's routes: a supervisor or admin key, or a session opened with one."""

    def __init__(self, auth: SupervisorAuth | None) -> None:
        self.auth = auth

    @staticmethod
    def _judge(role: str | None, what: str) -> tuple[int, str]:
        if role is None:
            return 401, f"unknown or revoked {what}"
        if role not in SUPERVISOR_ROLES:
            return 403, f"role {role!r} may not see the floor; needs supervisor or admin"
        return 200, role

    async def verdict(self, credential: tuple[str, str] | None) -> tuple[int, str]:
        """200 with the role, or the status and message of the refusal."""
        if self.auth is None:
            return 503, "the supervisor page needs API keys (the records database is not configured)"
        if credential is None:
            return 401, "sign in with a supervisor or admin API key (callpilot apikey create --role supervisor)"
        kind, value = credential
        if kind == "key":
            return self._judge(await self.auth.role_of_key(value), "API key")
        return self._judge(await self.auth.role_of_session(value), "session: sign in again")

    async def require(self, request: HTTPConnection) -> tuple[str, str] | None:
        credential = presented(request)
        status, message = await self.verdict(credential)
        if status != 200:
            raise HTTPException(status, message, headers={"WWW-Authenticate": "Bearer"} if status == 401 else None)
        return credential

    async def audit(self, credential: tuple[str, str] | None, action: str, target: str, **detail: Any) -> None:
        if self.auth is not None and credential is not None:
            await self.auth.audit(credential, action, target, detail)


def supervisor_router(service: Callable[[], HandoffService], auth: SupervisorAuth | None,
                      page: Callable[[str], str], divert: DivertSwitch | None = None,
                      queue_day: QueueDay | None = None) -> APIRouter:
    """`service()` is the running HandoffService (raises 503 otherwise); `page(name)` reads a web file;
    `divert` is the backup number's switch (None: no backup number configured)."""
    router = APIRouter()

    gate = SupervisorGate(auth)
    verdict, require = gate.verdict, gate.require

    def secure(request: Request) -> bool:
        return request.url.scheme == "https" or bool(auth is not None and auth.secure_cookie)

    def sign_in_page(message: str, status: int) -> HTMLResponse:
        return HTMLResponse(page("supervisor_login.html").replace("{{message}}", html.escape(message)),
                            status_code=status)

    @router.get("/supervisor")
    async def supervisor_page(request: Request) -> HTMLResponse:
        """The floor, or the sign-in form: a page to fill in, so 200 (a refused key is said on it)."""
        credential = presented(request)
        status, message = await verdict(credential)
        if status == 503:
            return sign_in_page(message, status)
        if status != 200:
            return sign_in_page("" if credential is None else message, 200)
        return HTMLResponse(page("supervisor.html"))

    @router.post("/supervisor/login")
    async def supervisor_login(request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        key = form.get("key", "").strip()
        status, message = await verdict(("key", key) if key else None)
        if status != 200 or auth is None:
            return sign_in_page(message, status)
        response = RedirectResponse("/supervisor", status_code=303)
        response.set_cookie(COOKIE, await auth.open_session(key), httponly=True, samesite="strict",
                            path="/supervisor", secure=secure(request), max_age=COOKIE_MAX_AGE_S)
        return response

    @router.post("/supervisor/logout")
    async def supervisor_logout(request: Request) -> Response:
        """Ends the session on the server too, so a copied cookie is worthless afterwards."""
        session_id = request.cookies.get(COOKIE)
        if session_id and auth is not None:
            await auth.close_session(session_id)
        response = RedirectResponse("/supervisor", status_code=303)
        response.delete_cookie(COOKIE, path="/supervisor", secure=secure(request), httponly=True, samesite="strict")
        return response

    @router.get("/supervisor/api/snapshot")
    async def snapshot(request: Request) -> dict[str, Any]:
        await require(request)
        return asdict(await service().snapshot())

    @router.get("/supervisor/api/wallboard")
    async def wallboard(request: Request, today: str | None = None) -> dict[str, Any]:
        """Today's numbers per queue (from the records; empty without them) and the amber / red thresholds.
        `today`: the start of the supervisor's day with its UTC offset (default: midnight UTC)."""
        await require(request)
        starts = day_start_param(today)
        numbers = await queue_day.today(starts) if queue_day is not None else {}
        thresholds = {name: t.model_dump() for name, t in service().config.wallboard.items()}
        return {"queues": numbers, "thresholds": thresholds}

    @router.get("/supervisor/api/divert")
    async def divert_status(request: Request) -> dict[str, Any]:
        """Whether new calls go to the backup number, and why (switch, voice_loading, voice_failed, asr_unhealthy)."""
        await require(request)
        return divert.status() if divert is not None else {"backup_number": None, "diverting": False}

    @router.post("/supervisor/api/divert")
    async def divert_switch(request: Request) -> dict[str, Any]:
        """{"on": true}: every new call goes to the backup number until {"on": false}."""
        await require(request)
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
    async def callback_schedule(request: Request) -> dict[str, Any]:
        """Schedule a callback: {"number": "+8613812345678" or "sip:...", "queue": "orders", "at": Unix seconds
        (optional: else as soon as an agent of the queue is free)}; callpilot dials it."""
        await require(request)
        try:
            body = json.loads(await request.body() or b"{}")
            if not isinstance(body, dict):
                raise ValueError("expected a JSON object")
            at = body.get("at")
            scheduled = await service().schedule_callback(str(body.get("number") or ""),
                                                          str(body.get("queue") or ""),
                                                          due_at=None if at is None else float(at))
        except UnknownQueue as exc:
            raise HTTPException(404, str(exc)) from None
        except (ValueError, TypeError) as exc:
            raise HTTPException(400, str(exc)) from None
        return scheduled.to_dict()

    @router.post("/supervisor/api/callbacks/{call_id}/done")
    async def callback_done(call_id: str, request: Request) -> dict[str, Any]:
        """A supervisor made (or handed out) the callback: off the list."""
        await require(request)
        if not await service().callbacks.done(call_id):
            raise HTTPException(404, f"no callback requested for call {call_id!r}")
        return {"done": call_id}

    @router.get("/supervisor/events")
    async def supervisor_events(request: Request) -> StreamingResponse:
        """Server-sent events: the floor (queues, agents, live calls, callbacks) every second, while the key or
        session that opened the stream stays valid (re-checked before each event)."""
        credential = await require(request)
        running = service()

        async def stream() -> AsyncIterator[str]:
            while not await request.is_disconnected():
                status, message = await verdict(credential)
                if status != 200:
                    yield f"event: signed_out\ndata: {json.dumps({'status': status, 'detail': message})}\n\n"
                    return
                view = await running.snapshot()
                yield f"event: snapshot\ndata: {json.dumps(asdict(view), default=str)}\n\n"
                await asyncio.sleep(REFRESH_S)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    return router
