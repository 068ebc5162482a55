"""`require_role(*roles)`: the FastAPI dependency every `/api/v1` route uses.

No key or an unknown/revoked key -> 401 (with `WWW-Authenticate: Bearer`); a valid key whose role is not
allowed -> 403. `admin` passes every check. The dependency returns the caller's `Principal`.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from callpilot.records.apikeys import ROLES, Principal, check_role, verify_key
from callpilot.records.db import get_database

bearer = HTTPBearer(auto_error=False, description="An API key from `callpilot apikey create`.")

__all__ = ["ROLES", "Principal", "require_role"]


def require_role(*roles: str) -> Callable[..., Principal]:
    """A dependency that lets through keys with one of `roles` (or admin)."""
    allowed = {check_role(role) for role in roles} | {"admin"}

    def dependency(
        request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
    ) -> Principal:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise HTTPException(401, "missing API key: send 'Authorization: Bearer <key>'",
                                headers={"WWW-Authenticate": "Bearer"})
        with get_database(request).session() as session:
            principal = verify_key(session, credentials.credentials)
        if principal is None:
            raise HTTPException(401, "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"})
        if principal.role not in allowed:
            raise HTTPException(403, f"role {principal.role!r} may not do this; needs {' or '.join(sorted(allowed))}")
        request.state.principal = principal
        return principal

    return dependency
