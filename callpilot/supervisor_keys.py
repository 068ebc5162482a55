"""The supervisor page's checks: the records' API keys (`callpilot apikey create --role supervisor`) and web
sessions, handed to `handoff.desk.mount_desk` (in `DeskParts`), which knows no database."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import FastAPI
from sqlalchemy.orm import Session

from callpilot.records.apikeys import Principal, verify_key
from callpilot.records.db import in_session
from callpilot.records.models import AuditEntry
from callpilot.records.web_sessions import close_session, open_session, secure_cookies, session_principal

T = TypeVar("T")
SCOPE = "supervisor"
__all__ = ["ApiKeySessions", "secure_cookies"]


class ApiKeySessions:
    """`SupervisorAuth` on the app's records database (`app.state.database`); with no database yet every key
    and session is unknown."""

    def __init__(self, app: FastAPI, *, secure_cookie: bool = False) -> None:
        self.app = app
        self.secure_cookie = secure_cookie

    async def _run(self, work: Callable[[Session], T], default: T) -> T:
        return await in_session(getattr(self.app.state, "database", None), work, default)

    async def role_of_key(self, key: str) -> str | None:
        def check(session: Session) -> str | None:
            principal = verify_key(session, key)
            return None if principal is None else principal.role

        return await self._run(check, None)

    async def open_session(self, key: str) -> str:
        def open_(session: Session) -> str:
            principal = verify_key(session, key)
            if principal is None:
                raise PermissionError("unknown or revoked API key")
            return open_session(session, principal, SCOPE)

        opened = await self._run(open_, "")
        if not opened:
            raise PermissionError("no records database: no sessions")
        return opened

    async def role_of_session(self, session_id: str) -> str | None:
        def check(session: Session) -> str | None:
            principal = session_principal(session, session_id, SCOPE)
            return None if principal is None else principal.role

        return await self._run(check, None)

    async def close_session(self, session_id: str) -> None:
        await self._run(lambda session: close_session(session, session_id), None)

    async def audit(self, credential: tuple[str, str], action: str, target: str, detail: dict[str, Any]) -> None:
        """One line in the records' audit log for what a supervisor did (changed a queue, listened in...)."""
        def write(session: Session) -> None:
            kind, value = credential
            principal: Principal | None = (verify_key(session, value) if kind == "key"
                                           else session_principal(session, value, SCOPE))
            actor = principal.actor if principal is not None else "unknown"
            session.add(AuditEntry(actor=actor, action=action, target=target, detail=detail))

        await self._run(write, None)
