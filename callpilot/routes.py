"""The app's own routes: liveness and readiness, the NLU model (`/model`, Rasa's `/model/parse`), Rasa's REST
channel and the action-server webhook. A module-level router over what `create_app` puts on `app.state`.

Who may call what, and which setting opens or closes it: docs/security.md.
"""

from __future__ import annotations

import hmac
import os
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.requests import HTTPConnection

from callpilot.nlu_holder import ModelHolder
from callpilot.settings import Settings


def holder_of(connection: HTTPConnection) -> ModelHolder:
    holder: ModelHolder = connection.app.state.holder
    return holder


def settings_of(connection: HTTPConnection) -> Settings:
    settings: Settings = connection.app.state.settings
    return settings


Holder = Annotated[ModelHolder, Depends(holder_of)]
AppSettings = Annotated[Settings, Depends(settings_of)]
router = APIRouter()


def action_server_on(settings: Settings) -> bool:
    """The action server serves a Rasa brain, or is switched on with `action_server: true`."""
    return settings.brain == "rasa" or settings.action_server


def bearer_or_query_token(request: Request) -> str | None:
    """The token of `Authorization: Bearer <token>`, else `?token=` (how Rasa's EndpointConfig sends it)."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.query_params.get("token") or None


def token_matches(presented: str | None, expected: str) -> bool:
    return presented is not None and hmac.compare_digest(presented.encode(), expected.encode())


@router.get("/health/live")
def live() -> dict[str, str]:
    """Liveness (Kubernetes' livenessProbe): 200 while the process serves requests, also while models load or
    after one failed to load (readiness, `/health`, keeps traffic away then; a restart would not help)."""
    return {"status": "alive"}


@router.get("/health")
def health(request: Request) -> JSONResponse:
    """Readiness (load balancers, Kubernetes): 200 once the NLU and the voice models are loaded; 503 with
    what is not ready ("loading", or "error" once a part failed to load) until then. States only, never a
    connection string (those go to the log, masked)."""
    app = request.app.state
    holder, settings = app.holder, app.settings
    nlu = "ready" if holder.engine is not None else "failed" if holder.error else "loading"
    voice_status = app.voice.status()
    parts = {"nlu": nlu, "voice": str(voice_status["status"])}
    errors = {"nlu": holder.error, "voice": voice_status["error"]}
    not_ready = [part for part, state in parts.items() if state != "ready"]
    failed = [part for part, state in parts.items() if state == "failed"]
    status = "error" if failed else "loading" if not_ready else "ok"
    detail = "\n".join(f"{part}: {errors[part]}" for part in failed) or None
    return JSONResponse({"status": status, "not_ready": not_ready, **parts, "detail": detail,
                         "model_id": holder.engine.model_id if holder.engine is not None else None,
                         "brain": settings.brain, "handoff": app.handoff.status, "leader": app.leader.is_leader,
                         "worker": settings.worker_index, "pid": os.getpid()},
                        status_code=200 if status == "ok" else 503)


@router.get("/model")
def model_info(holder: Holder) -> dict[str, Any]:
    if holder.engine is None:
        raise HTTPException(503, holder.error or "the NLU model is still loading")
    return holder.engine.info()


@router.post("/model/parse")
def parse(holder: Holder, settings: AppSettings, body: Any = Body(...)) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("text"), str):
        raise HTTPException(400, 'expected a JSON object like {"text": "where is my order"}')
    language = body.get("language")
    if language is not None and language not in settings.languages:
        raise HTTPException(400, f"language must be one of the line's languages: {', '.join(settings.languages)}")
    if holder.engine is None:
        raise HTTPException(503, holder.error or "the NLU model is still loading")
    result = holder.engine.parse(body["text"][: settings.max_text_chars], language=language)
    if "message_id" in body:
        result["message_id"] = body["message_id"]
    return result


def rest_channel_key(request: Request) -> None:
    settings = request.app.state.settings
    if settings.rest_channel_token and not token_matches(bearer_or_query_token(request),
                                                         settings.rest_channel_token):
        raise HTTPException(401, "the REST channel needs 'Authorization: Bearer <rest_channel_token>'",
                            headers={"WWW-Authenticate": "Bearer"})


@router.post("/webhooks/rest/webhook", dependencies=[Depends(rest_channel_key)])
def rest_webhook(request: Request, holder: Holder, settings: AppSettings,
                 body: Any = Body(...)) -> list[dict[str, Any]]:
    """Rasa's REST channel. `sender` is the conversation's only key: clients must make it unguessable."""
    if not isinstance(body, dict) or not isinstance(body.get("message"), str):
        raise HTTPException(400, 'expected a JSON object like {"sender": "id", "message": "hi"}')
    if holder.engine is None and settings.brain == "builtin":
        raise HTTPException(503, holder.error or "the NLU model is still loading")
    message = body["message"][: settings.max_text_chars]  # cut before anything cleans or stores it
    sender = str(body.get("sender") or "default")
    records = request.app.state.records
    records.text.begin(sender)  # the inbox links its items to this call
    replies: list[dict[str, Any]] = []
    try:
        replies = request.app.state.brain().rest({**body, "message": message})
    finally:  # also when the brain failed: the message is recorded and the conversation can end idle
        records.text.exchange(sender, message, replies)
    return replies


def action_token(request: Request) -> None:
    settings = request.app.state.settings
    if not action_server_on(settings):
        raise HTTPException(404, "the action server is off: it serves a Rasa brain (brain: rasa) or is "
                                 "switched on with action_server: true")
    if not settings.action_token:
        raise HTTPException(503, "the action server needs action_token (CALLPILOT_ACTION_TOKEN)")
    if not token_matches(bearer_or_query_token(request), settings.action_token):
        raise HTTPException(401, "missing or wrong action token (endpoints.yml: action_endpoint.token)",
                            headers={"WWW-Authenticate": "Bearer"})


@router.post("/webhook", dependencies=[Depends(action_token)])
def action_server(request: Request, body: Any = Body(...)) -> JSONResponse:
    """Rasa's action-server protocol, so a Rasa server can run callpilot's actions: on with `brain: rasa`
    or `action_server: true`, and only for requests with `action_token` (`?token=` or a bearer header)."""
    status, reply = request.app.state.brain().action_server(body)
    return JSONResponse(reply, status_code=status)

