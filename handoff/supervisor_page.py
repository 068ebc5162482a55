"""The supervisor page (`/supervisor`) and its data (`/supervisor/api/snapshot`, `/supervisor/events`),
behind a supervisor or admin API key.

The key comes as `Authorization: Bearer <key>` or, for the browser, from the sign-in form, which keeps it
in an HttpOnly, SameSite=Strict cookie scoped to `/supervisor` (the event stream sends it too). Keys are
checked by `SupervisorKeys` (callpilot wires the records' API keys), so this module knows no database.
"""

from __future__ import annotations

import asyncio
import html
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from handoff.service import HandoffService

SupervisorKeys = Callable[[str], Awaitable[str | None]]  # an API key -> its role; None: unknown or revoked
SUPERVISOR_ROLES = ("supervisor", "admin")
COOKIE = "callpilot_supervisor"
REFRESH_S = 1.0
COOKIE_MAX_AGE_S = 12 * 3600


def presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.cookies.get(COOKIE) or None


def supervisor_router(service: Callable[[], HandoffService], keys: SupervisorKeys | None,
                      page: Callable[[str], str]) -> APIRouter:
    """`service()` is the running HandoffService (raises 503 otherwise); `page(name)` reads a web file."""
    router = APIRouter()

    async def verdict(key: str | None) -> tuple[int, str]:
        """200 with the role, or the status and message of the refusal."""
        if keys is None:
            return 503, "the supervisor page needs API keys (the records database is not configured)"
        if not key:
            return 401, "sign in with a supervisor or admin API key (callpilot apikey create --role supervisor)"
        role = await keys(key)
        if role is None:
            return 401, "unknown or revoked API key"
        if role not in SUPERVISOR_ROLES:
            return 403, f"role {role!r} may not see the floor; needs supervisor or admin"
        return 200, role

    async def require(request: Request) -> None:
        status, message = await verdict(presented_key(request))
        if status != 200:
            raise HTTPException(status, message, headers={"WWW-Authenticate": "Bearer"} if status == 401 else None)

    def sign_in_page(message: str, status: int) -> HTMLResponse:
        return HTMLResponse(page("supervisor_login.html").replace("{{message}}", html.escape(message)),
                            status_code=status)

    @router.get("/supervisor")
    async def supervisor_page(request: Request) -> HTMLResponse:
        """The floor, or the sign-in form: a page to fill in, so 200 (a refused key is said on it)."""
        status, message = await verdict(presented_key(request))
        if status == 503:
            return sign_in_page(message, status)
        if status != 200:
            return sign_in_page("" if presented_key(request) is None else message, 200)
        return HTMLResponse(page("supervisor.html"))

    @router.post("/supervisor/login")
    async def supervisor_login(request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        key = form.get("key", "").strip()
        status, message = await verdict(key)
        if status != 200:
            return sign_in_page(message, status)
        response = RedirectResponse("/supervisor", status_code=303)
        response.set_cookie(COOKIE, key, httponly=True, samesite="strict", path="/supervisor",
                            secure=request.url.scheme == "https", max_age=COOKIE_MAX_AGE_S)
        return response

    @router.post("/supervisor/logout")
    async def supervisor_logout() -> Response:
        response = RedirectResponse("/supervisor", status_code=303)
        response.delete_cookie(COOKIE, path="/supervisor")
        return response

    @router.get("/supervisor/api/snapshot")
    async def snapshot(request: Request) -> dict[str, Any]:
        await require(request)
        return asdict(await service().snapshot())

    @router.post("/supervisor/api/callbacks/{call_id}/done")
    async def callback_done(call_id: str, request: Request) -> dict[str, Any]:
        """A supervisor made (or handed out) the callback: off the list."""
        await require(request)
        if not await service().callbacks.done(call_id):
            raise HTTPException(404, f"no callback requested for call {call_id!r}")
        return {"done": call_id}

    @router.get("/supervisor/events")
    async def supervisor_events(request: Request) -> StreamingResponse:
        """Server-sent events: the floor (queues, agents, live calls, callbacks) every second."""
        await require(request)
        running = service()

        async def stream() -> AsyncIterator[str]:
            while not await request.is_disconnected():
                view = await running.snapshot()
                yield f"event: snapshot\ndata: {json.dumps(asdict(view), default=str)}\n\n"
                await asyncio.sleep(REFRESH_S)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    return router
