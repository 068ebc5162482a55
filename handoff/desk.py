"""The agent desktop (`/agent`, `/agent/ws`, `/agent/api/...`), with the supervisor page (`/supervisor`,
in `handoff.supervisor_page`) mounted beside it.

Agents sign in with the token `callpilot agent add` printed: in the websocket's first JSON message
(`{"type": "hello", "token": ...}`) or as `?token=`; REST routes take `Authorization: Bearer <token>`.
An unknown or expired token closes the websocket with 4401 and answers REST with 401.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Header, HTTPException, Query, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse, PlainTextResponse

from handoff.bridge import AudioBridge
from handoff.desk_parts import DeskHistory, DeskParts, Parts, day_start_param, web_file
from handoff.desk_session import DeskSession, agent_json, error_code
from handoff.errors import HandoffError, UnknownAgent
from handoff.model import Agent
from handoff.service import HandoffService
from handoff.supervisor_actions import router as supervisor_actions_router
from handoff.supervisor_page import router as supervisor_router

log = logging.getLogger(__name__)

UNAUTHORIZED_CLOSE = 4401  # the websocket twin of HTTP 401
UNAVAILABLE_CLOSE = 1013  # try again later: the handoff service is not running
HELLO_TIMEOUT_S = 10.0
WEB_FILES = {"agent.html": "text/html", "agent.js": "text/javascript", "supervisor.html": "text/html",
             "supervisor.js": "text/javascript"}

Deps = Callable[[], tuple[HandoffService, AudioBridge] | None]
MAX_DAYS = 31


router = APIRouter()


def mount_desk(app: FastAPI, parts: DeskParts) -> None:
    """/agent, /agent/ws, /agent/api and /supervisor over `parts` (the running service, key checks, records)."""
    app.state.desk = parts
    app.include_router(router)


async def bearer_agent(parts: DeskParts, authorization: str | None) -> Agent:
    service, _ = parts.running()
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(401, "sign in: send 'Authorization: Bearer <agent token>'",
                            headers={"WWW-Authenticate": "Bearer"})
    try:
        return await service.authenticate(token.strip())
    except UnknownAgent:
        raise HTTPException(401, "unknown or expired agent token", headers={"WWW-Authenticate": "Bearer"}) from None


def handoff_error(exc: HandoffError) -> HTTPException:
    return HTTPException(error_code(exc), str(exc))


# Pages.


@router.get("/agent")
def agent_page() -> HTMLResponse:
    return HTMLResponse(web_file("agent.html"))


@router.get("/agent/static/{name}")
def static(name: str) -> PlainTextResponse:
    if name not in WEB_FILES:
        raise HTTPException(404, f"no file {name!r}")
    return PlainTextResponse(web_file(name), media_type=WEB_FILES[name])


# REST for the agent.


@router.get("/agent/api/me")
async def me(parts: Parts, authorization: str | None = Header(None)) -> dict[str, Any]:
    return agent_json(await bearer_agent(parts, authorization))


def need_history(parts: DeskParts) -> DeskHistory:
    if parts.history is None:
        raise HTTPException(503, "no call records here (the records database is not configured)")
    return parts.history


@router.get("/agent/api/calls")
async def my_calls(parts: Parts, authorization: str | None = Header(None), days: int = Query(7, ge=1, le=MAX_DAYS),
                   today: str | None = Query(None, description="start of the agent's day, ISO with offset")
                   ) -> dict[str, Any]:
    """The signed-in agent's calls of the last `days` days, and their numbers today and over the period."""
    agent = await bearer_agent(parts, authorization)
    return await need_history(parts).my_calls(agent.agent_id, days, day_start_param(today))


@router.get("/agent/api/calls/{call_id}")
async def my_call(parts: Parts, call_id: str, authorization: str | None = Header(None)) -> dict[str, Any]:
    """One of the agent's own calls: timeline and transcript (404 for any other call)."""
    agent = await bearer_agent(parts, authorization)
    found = await need_history(parts).my_call(agent.agent_id, call_id)
    if found is None:
        raise HTTPException(404, f"no call {call_id[:80]!r} taken by you")
    return found


@router.get("/agent/api/contacts")
async def my_contact(parts: Parts, number: str = Query(min_length=3, max_length=40),
                     authorization: str | None = Header(None)) -> dict[str, Any]:
    """The contact of a caller this agent talked to (404 for any other number)."""
    agent = await bearer_agent(parts, authorization)
    found = await need_history(parts).my_contact(agent.agent_id, number)
    if found is None:
        raise HTTPException(404, f"no contact for {number!r} among your callers")
    return found


@router.post("/agent/api/offers/{offer_id}/accept")
async def accept(parts: Parts, offer_id: str, authorization: str | None = Header(None)) -> dict[str, Any]:
    """Take a ringing call; 409 if another agent took it first. Then bridge it with `join` on the websocket."""
    agent = await bearer_agent(parts, authorization)
    service, _ = parts.running()
    try:
        context = await service.accept(agent.agent_id, offer_id)
    except HandoffError as exc:
        raise handoff_error(exc) from None
    return {"call_id": context.call_id, "context": context.to_dict()}


@router.post("/agent/api/offers/{offer_id}/decline")
async def decline(parts: Parts, offer_id: str, authorization: str | None = Header(None)) -> dict[str, Any]:
    agent = await bearer_agent(parts, authorization)
    service, _ = parts.running()
    try:
        await service.decline(agent.agent_id, offer_id)
    except HandoffError as exc:
        raise handoff_error(exc) from None
    return {"declined": offer_id}


# The desktop's websocket.


@router.websocket("/agent/ws")
async def agent_ws(parts: Parts, websocket: WebSocket) -> None:
    await websocket.accept()
    found = parts.deps()
    if found is None:
        await websocket.close(UNAVAILABLE_CLOSE, "the handoff service is not running")
        return
    service, bridge = found
    agent = await sign_in(websocket, service)
    if agent is None:
        return
    session = DeskSession(agent, service, bridge, websocket.send_json, websocket.send_bytes, websocket.close)
    await session.start()
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            if message.get("bytes") is not None:
                await session.receive_audio(message["bytes"])
            elif message.get("text") is not None:
                try:
                    data = json.loads(message["text"])
                except ValueError as exc:
                    await session.error(400, f"not JSON: {exc}")
                    continue
                if not isinstance(data, dict):
                    await session.error(400, "expected a JSON object with a 'type'")
                    continue
                await session.receive_text(data)
    except WebSocketDisconnect:
        pass
    finally:
        await asyncio.shield(session.close())  # even when the server cancels us: the call must move on


# The supervisor (behind a supervisor or admin API key).

router.include_router(supervisor_router)
router.include_router(supervisor_actions_router)


async def sign_in(websocket: WebSocket, service: HandoffService) -> Agent | None:
    """The token from `?token=` or the first message; a bad one closes with 4401."""
    token = websocket.query_params.get("token")
    if not token:
        try:
            first = await asyncio.wait_for(websocket.receive_text(), HELLO_TIMEOUT_S)
            hello = json.loads(first)
            token = hello.get("token") if isinstance(hello, dict) and hello.get("type") == "hello" else None
        except (TimeoutError, ValueError, KeyError, WebSocketDisconnect, RuntimeError):
            token = None
    try:
        if not token:
            raise UnknownAgent("no token")
        return await service.authenticate(str(token))
    except UnknownAgent:
        await websocket.send_json({"type": "error", "code": 401, "message": "unknown or expired agent token"})
        await websocket.close(UNAUTHORIZED_CLOSE, "unknown or expired agent token")
        return None
