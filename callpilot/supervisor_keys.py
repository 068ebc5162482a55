"""The supervisor page's API-key check: the records' API keys (`callpilot apikey create --role supervisor`),
handed to `handoff.desk_router`, which knows no database."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from callpilot.records.apikeys import verify_key
from handoff.supervisor_page import SupervisorKeys


def api_key_roles(app: FastAPI) -> SupervisorKeys:
    """`role_of(key)`: the role of an active key in the app's records database (`app.state.database`),
    None for an unknown or revoked one, or when there is no database yet."""

    async def role_of(key: str) -> str | None:
        database = getattr(app.state, "database", None)
        if database is None:
            return None

        def check() -> str | None:
            with database.session() as session:
                principal = verify_key(session, key)
            return None if principal is None else principal.role

        return await asyncio.to_thread(check)

    return role_of
