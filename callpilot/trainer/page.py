"""`/trainer`: the workbench page (sign-in with a trainer or admin API key), and the routes it and scripts use."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import parse_qsl

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from callpilot.records.web_sessions import SESSION_LIFETIME, close_session, secure_cookies, sign_in
from callpilot.trainer.api import router
from callpilot.trainer.auth import COOKIE, ROLES, SCOPE, trainer_key

WEB = Path(__file__).resolve().parent / "web"


page_router = APIRouter()


def mount_trainer(app: FastAPI) -> None:
    """`/api/v1/trainer/...` (bearer keys, in the OpenAPI schema), the same under `/trainer/api` for the page
    (its session cookie is scoped to /trainer), and the page with its sign-in."""
    app.include_router(router, prefix="/api/v1/trainer")
    app.include_router(router, prefix="/trainer/api", include_in_schema=False)
    app.include_router(page_router)


def secure(request: Request) -> bool:
    return request.url.scheme == "https" or secure_cookies(request.app.state.settings.public_url)


def signed_in(request: Request) -> bool:
    try:
        trainer_key(request)
        return True
    except Exception:
        return False


@page_router.get("/trainer", response_class=HTMLResponse, include_in_schema=False)
async def trainer_page(request: Request) -> HTMLResponse:
    if not await asyncio.to_thread(signed_in, request):
        return HTMLResponse(_login())
    return HTMLResponse((WEB / "trainer.html").read_text())


@page_router.post("/trainer/login", include_in_schema=False)
async def trainer_login(request: Request) -> Response:
    form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
    key = form.get("key", "").strip()
    principal, session_id = await asyncio.to_thread(sign_in, request.app.state.database, key, ROLES, SCOPE)
    if principal is None or session_id is None:
        why = "unknown or revoked API key" if principal is None else f"role {principal.role!r} may not train"
        return HTMLResponse(_login(why), status_code=401)
    response = RedirectResponse("/trainer", status_code=303)
    response.set_cookie(COOKIE, session_id, httponly=True, samesite="strict", path="/trainer",
                        secure=secure(request), max_age=int(SESSION_LIFETIME.total_seconds()))
    return response


@page_router.post("/trainer/logout", include_in_schema=False)
async def trainer_logout(request: Request) -> Response:
    session_id = request.cookies.get(COOKIE)
    if session_id:
        def close() -> None:
            with request.app.state.database.session() as session:
                close_session(session, session_id)

        await asyncio.to_thread(close)
    response = RedirectResponse("/trainer", status_code=303)
    response.delete_cookie(COOKIE, path="/trainer", secure=secure(request), httponly=True, samesite="strict")
    return response


def _login(error: str | None = None) -> str:
    page = (WEB / "login.html").read_text()
    message = f'<p class="error">{_escape(error)}</p>' if error else ""
    return page.replace("<!--error-->", message)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
