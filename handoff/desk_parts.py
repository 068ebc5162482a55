"""What the agent desk's and the supervisor's routes work with, put on the app by callpilot (`mount_desk`): the
running handoff service and audio bridge, the supervisor's key check, the backup number's switch, and the records'
views (the agent's history, today's queue numbers, voicemails). This package knows no database: each is a protocol
callpilot implements; a missing one makes its routes answer 503."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Protocol

from fastapi import Depends, HTTPException
from starlette.requests import HTTPConnection

from handoff.bridge import AudioBridge
from handoff.service import HandoffService

SUPERVISOR_ROLES = ("supervisor", "admin")
COOKIE = "callpilot_supervisor"
Deps = Callable[[], tuple[HandoffService, AudioBridge] | None]


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


class VoicemailBox(Protocol):
    """Callers' messages from the records (callpilot.voicemails)."""

    async def waiting(self) -> list[dict[str, Any]]:
        """Messages not marked done, newest first: call_id, caller_number, queue, language, left_at."""
        ...

    async def audio(self, call_id: str) -> Path | None: ...

    async def done(self, call_id: str) -> bool: ...


class DeskHistory(Protocol):
    """The desk's view of the records (callpilot wires the records database; None: the routes answer 503)."""

    async def my_calls(self, agent_id: str, days: int, today_starts: datetime | None = None) -> dict[str, Any]:
        """{"calls": [...newest first], "today": numbers, "period": numbers, "days": days}."""
        ...

    async def my_call(self, agent_id: str, call_id: str) -> dict[str, Any] | None:
        """One of the agent's calls with timeline and transcript (audited); None if not theirs."""
        ...

    async def my_contact(self, agent_id: str, number: str) -> dict[str, Any] | None:
        """The contact of a caller the agent talked to; None if not one of theirs or unknown."""
        ...


def web_file(name: str) -> str:
    return resources.files("handoff").joinpath("web", name).read_text(encoding="utf-8")


@dataclass(frozen=True)
class DeskParts:
    """`deps()` returns the running service and bridge (None while they start or after a failure)."""

    deps: Deps
    supervisor_auth: SupervisorAuth | None = None
    divert: DivertSwitch | None = None
    history: DeskHistory | None = None
    queue_day: QueueDay | None = None
    voicemails: VoicemailBox | None = None
    gate: SupervisorGate = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "gate", SupervisorGate(self.supervisor_auth))

    def running(self) -> tuple[HandoffService, AudioBridge]:
        found = self.deps()
        if found is None:
            raise HTTPException(503, "the handoff service is not running (is Redis reachable?)")
        return found

    def service(self) -> HandoffService:
        return self.running()[0]


def desk_parts(connection: HTTPConnection) -> DeskParts:
    """The app's `DeskParts` (put there by `handoff.desk.mount_desk`)."""
    parts: DeskParts = connection.app.state.desk
    return parts


Parts = Annotated[DeskParts, Depends(desk_parts)]
