"""The voice gateway's routes: Twilio's webhook and media stream, the browser softphone, voice health, and the
divert check for Asterisk's dialplan. A module-level router over the app's `VoiceRuntime` (`app.state.voice`)."""

from __future__ import annotations

import ipaddress
import os
from importlib import resources
from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, FastAPI, Request, WebSocket
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.requests import HTTPConnection

from callpilot.settings import Settings
from callpilot.voice import VoiceRuntime
from callpilot.voice_access import (
    BUSY_TWIML,
    media_start_check,
    phone_enabled,
    twilio_request_ok,
    warn_about_open_doors,
)
from voice_gateway.transports import serve_softphone, serve_twilio
from voice_gateway.twilio_rest import dial_twiml
from voice_gateway.twilio_security import MEDIA_TOKEN_PARAMETER, media_token
from voice_gateway.twiml import media_stream_url, voice_twiml_for_form


def voice_of(connection: HTTPConnection) -> VoiceRuntime:
    """The app's `VoiceRuntime` (put there by `mount_voice`)."""
    runtime: VoiceRuntime = connection.app.state.voice
    return runtime


Voice = Annotated[VoiceRuntime, Depends(voice_of)]
router = APIRouter()


def mount_voice(app: FastAPI, runtime: VoiceRuntime) -> VoiceRuntime:
    """Add the voice routes to the app over `runtime` (which the app's lifespan starts and stops)."""
    app.state.voice = runtime
    warn_about_open_doors(runtime.settings)
    app.include_router(router)
    return runtime


def _web_file(name: str) -> str:
    return resources.files("voice_gateway").joinpath("web", name).read_text(encoding="utf-8")


def _public_url(request: Request) -> str:
    """Our base URL as the caller sees it (honours a proxy's X-Forwarded-Proto/Host)."""
    proto = request.headers.get("x-forwarded-proto", request.url.scheme)
    host = request.headers.get("x-forwarded-host", request.headers.get("host", request.url.netloc))
    return f"{proto}://{host}"


async def refuse(websocket: WebSocket, code: int, reason: str) -> None:
    """Accept, then close with a code and a reason the caller's side can show (a close before the handshake is
    only an HTTP 403 to a browser)."""
    await websocket.accept()
    await websocket.close(code, reason)


def telephony_client(settings: Settings, host: str) -> bool:
    """A request from loopback or from a network in `sip_allow` (the trunk's, the PBX's)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or any(address in ipaddress.ip_network(net, strict=False)
                                       for net in settings.sip_allow)


@router.post("/twilio/voice")
async def twilio_voice(request: Request, runtime: Voice) -> Response:
    """Twilio's "a call comes in" webhook: connect the call to our media stream (signed requests only when
    a Twilio auth token is set; `<Reject reason="busy"/>` when every line is taken)."""
    settings = runtime.settings
    form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
    if not twilio_request_ok(settings, request, form):
        runtime.rejected("twilio", "forbidden")
        return Response("invalid X-Twilio-Signature", status_code=403, media_type="text/plain")
    backup = runtime.divert.target(form.get("To", ""))
    if backup:  # the backup number takes new calls (a supervisor's switch, or callpilot is not healthy)
        runtime.rejected("twilio", "diverted")
        return Response(dial_twiml(backup, caller_id=form.get("From") or None), media_type="application/xml")
    if runtime.gate.active >= runtime.gate.max_calls:
        runtime.rejected("twilio", "busy")
        return Response(BUSY_TWIML, media_type="application/xml")
    extra = {}
    if request.query_params.get("callback_for"):  # a callback we placed through the Calls API, answered
        extra["callback_for"] = request.query_params["callback_for"][:80]
    if settings.twilio_auth_token and form.get("CallSid"):
        extra[MEDIA_TOKEN_PARAMETER] = media_token(settings.twilio_auth_token, form["CallSid"])
    stream = media_stream_url(settings.public_url or _public_url(request))
    return Response(voice_twiml_for_form(form, stream, extra), media_type="application/xml")


@router.get("/health/divert")
def divert_now(request: Request, runtime: Voice, called: str = "") -> Response:
    """For Asterisk's dialplan before AudioSocket: the backup number while new calls must go there, else
    nothing (`Set(BACKUP=${CURL(http://127.0.0.1:8080/health/divert)})`, README). Only for the telephony
    side: loopback and the `sip_allow` networks (403 for anyone else)."""
    if not telephony_client(runtime.settings, request.client.host if request.client else ""):
        return Response("only the telephony side may ask (loopback, sip_allow)", status_code=403,
                        media_type="text/plain")
    backup = runtime.divert.target(called[:80])
    if backup:
        runtime.rejected("audiosocket", "diverted")
    return Response(backup or "", media_type="text/plain")


@router.websocket("/media/twilio")
async def twilio_media(websocket: WebSocket, runtime: Voice) -> None:
    if await runtime.wait_ready() is None:
        await websocket.close(1013)  # try again later
        return
    # a line is taken when the stream's start arrives (every line busy: close 1013), not by a bare connection
    await serve_twilio(websocket, runtime.new_call, limits=runtime.limits,
                       verify_start=media_start_check(runtime.settings),
                       redirect=runtime.twilio_redirect if runtime.twilio is not None else None, gate=runtime.gate)


@router.websocket("/phone/ws")
async def softphone(websocket: WebSocket, runtime: Voice) -> None:
    client = websocket.client.host if websocket.client else "?"
    if not phone_enabled(runtime.settings):
        await refuse(websocket, 1008, "the softphone is off (phone_enabled)")
        return
    if not runtime.phone_limit.allow(client):
        runtime.rejected("softphone", "rate_limited")
        await refuse(websocket, 1008, "too many calls from this address: try again in a minute")
        return
    if await runtime.wait_ready() is None:
        await websocket.close(1013)
        return
    await serve_softphone(websocket, runtime.new_call, limits=runtime.limits, gate=runtime.gate)


@router.get("/health/voice")
def voice_health(runtime: Voice) -> JSONResponse:
    """The voice models: 200 once ready, 503 while loading or after a failure (the error says why)."""
    status = {**runtime.status(), "worker": runtime.settings.worker_index, "pid": os.getpid()}
    return JSONResponse(status, status_code=200 if status["status"] == "ready" else 503)


@router.get("/phone")
def phone_page(runtime: Voice) -> HTMLResponse:
    if not phone_enabled(runtime.settings):
        return HTMLResponse("<p>The browser softphone is off on this server (setting <code>phone_enabled</code>)."
                            "</p>", status_code=404)
    return HTMLResponse(_web_file("phone.html"))


@router.get("/phone/phone-worklet.js")
def phone_worklet() -> PlainTextResponse:
    return PlainTextResponse(_web_file("phone-worklet.js"), media_type="text/javascript")
