"""Browser sign-ins (dashboard, supervisor page) as server-side sessions: the cookie holds a random session id,
the `web_sessions` table its SHA-256, the API key it was opened with, its page and its expiry.

A session ends when it expires, when its browser signs out, or when its API key is revoked (checked on every
use), so a leaked cookie is worth less than a leaked key and never reveals one.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from callpilot.records.apikeys import Principal, verify_key
from callpilot.records.db import Database
from callpilot.records.models import ApiKey, WebSession, utcnow

SESSION_LIFETIME = timedelta(hours=12)
SCOPES = ("dashboard", "supervisor", "calls", "trainer")


def secure_cookies(public_url: str | None) -> bool:
    """Sign-in cookies are Secure when the public URL is https (TLS may end at a proxy in front of us)."""
    return bool(public_url and public_url.lower().startswith("https://"))


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def open_session(session: Session, principal: Principal, scope: str, *,
                 lifetime: timedelta = SESSION_LIFETIME) -> str:
    """A new session for an already verified key; returns the id for the cookie (shown only this once)."""
    if scope not in SCOPES:
        raise ValueError(f"unknown session scope {scope!r}: use one of {', '.join(SCOPES)}")
    now = utcnow()
    session.execute(delete(WebSession).where(WebSession.expires_at < now - timedelta(days=1)))  # old rows go
    session_id = secrets.token_urlsafe(32)
    session.add(WebSession(session_hash=_hash(session_id), key_id=principal.key_id, scope=scope, created_at=now,
                           expires_at=now + lifetime))
    return session_id


def session_principal(session: Session, session_id: str, scope: str) -> Principal | None:
    """Who the session belongs to; None when it is unknown, of another page, expired, signed out, or its key
    has been revoked since."""
    found = session.execute(
        select(WebSession, ApiKey).join(ApiKey, ApiKey.key_id == WebSession.key_id)
        .where(WebSession.session_hash == _hash(session_id))
    ).first()
    if found is None:
        return None
    row, key = found
    if row.scope != scope or row.revoked_at is not None or row.expires_at <= utcnow() or key.revoked_at is not None:
        return None
    return Principal(key.key_id, key.name, key.role, key.agent_id)


def close_session(session: Session, session_id: str) -> None:
    """Sign out: the session id stops working at once, wherever the cookie was copied to."""
    row = session.scalar(select(WebSession).where(WebSession.session_hash == _hash(session_id)))
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()


def sign_in(database: Database, key: str, roles: tuple[str, ...], scope: str) -> tuple[Principal | None, str | None]:
    """A browser's sign-in form: the API key's principal, and a new session id when its role is one of `roles`
    (None when the key is unknown or revoked, or its role may not use the page)."""
    with database.session() as session:
        principal = verify_key(session, key) if key else None
        if principal is None or principal.role not in roles:
            return principal, None
        return principal, open_session(session, principal, scope)
