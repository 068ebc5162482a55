"""Who may use the workbench: a trainer or admin API key as a bearer (scripts), or the /trainer page's sign-in
session (an HttpOnly cookie scoped to /trainer holding a server-side session id, never the key)."""

from __future__ import annotations

from fastapi import HTTPException, Request

from callpilot.records.apikeys import Principal, verify_key
from callpilot.records.db import get_database
from callpilot.records.web_sessions import session_principal

COOKIE = "callpilot_trainer"
SCOPE = "trainer"
ROLES = ("trainer", "admin")


def trainer_key(request: Request) -> Principal:
    """A FastAPI dependency: 401 without a valid key or session, 403 for other roles."""
    header = request.headers.get("authorization", "")
    key = header[7:].strip() if header.lower().startswith("bearer ") else None
    session_id = None if key else request.cookies.get(COOKIE)
    if not (key or session_id):
        raise HTTPException(401, "missing API key: send 'Authorization: Bearer <key>' or sign in at /trainer",
                            headers={"WWW-Authenticate": "Bearer"})
    if session_id and request.method != "GET" and request.headers.get("x-requested-with") != "callpilot":
        raise HTTPException(403, "a signed-in page must send X-Requested-With: callpilot")  # no cross-site forms
    with get_database(request).session() as session:
        principal = verify_key(session, key) if key else session_principal(session, session_id or "", SCOPE)
    if principal is None:
        raise HTTPException(401, "unknown or revoked API key (or an expired sign-in)",
                            headers={"WWW-Authenticate": "Bearer"})
    if principal.role not in ROLES:
        raise HTTPException(403, f"role {principal.role!r} may not do this; needs admin or trainer")
    request.state.principal = principal
    return principal
