"""Twilio's REST API as callpilot uses it on a Twilio line, checked against Twilio's documented request shapes
(Twilio itself cannot be reached from here): placing a callback (Calls.json), redirecting a live call to a
<Dial> (a transfer) and reading its status; a transferred Media Streams call is redirected before its stream
closes; callback attempts through the Calls API end in the outcome Twilio reports."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

from callpilot.callbacks import twilio_place
from handoff.model import CallbackRequest
from voice_gateway.events import CallStarted, InboundEvent, Transfer
from voice_gateway.transports.connection import CallConnection
from voice_gateway.transports.websocket import serve_twilio
from voice_gateway.twilio_rest import TwilioError, TwilioRest, dial_twiml

ACCOUNT, TOKEN = "AC" + "a1" * 16, "secret-token"
CALL = "CA" + "b2" * 16


@dataclass
class FakeTwilio:
    """Answers like Twilio's API and keeps every request; `statuses` are the call's status on each GET."""

    statuses: list[str] = field(default_factory=lambda: ["queued", "ringing", "busy"])
    requests: list[httpx.Request] = field(default_factory=list)
    fail: tuple[int, dict[str, object]] | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.fail is not None:
            return httpx.Response(self.fail[0], json=self.fail[1])
        if request.method == "GET":
            status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
            return httpx.Response(200, json={"sid": CALL, "status": status})
        return httpx.Response(201, json={"sid": CALL, "status": "queued"})

    def client(self) -> TwilioRest:
        return TwilioRest(ACCOUNT, TOKEN, transport=httpx.MockTransport(self))


def form(request: httpx.Request) -> dict[str, list[str]]:
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    return parse_qs(request.content.decode())


pytestmark = pytest.mark.anyio


async def test_placing_redirecting_and_reading_a_call_send_twilios_documented_requests() -> None:
    twilio = FakeTwilio()
    rest = twilio.client()
    sid = await rest.create_call("+8613812345678", "+14155550100", url="https://cp.example/twilio/voice?callback_for=c1",
                                 timeout_s=25)
    await rest.redirect_call(sid, dial_twiml("+18005550100", caller_id="+14155550100"))
    assert await rest.call_status(sid) == "queued"
    create, redirect, fetch = twilio.requests
    basic = "Basic " + base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
    assert all(r.headers["authorization"] == basic for r in twilio.requests)
    assert (create.method, create.url.path) == ("POST", f"/2010-04-01/Accounts/{ACCOUNT}/Calls.json")
    assert create.url.host == "api.twilio.com" and create.url.scheme == "https"
    assert form(create) == {"To": ["+8613812345678"], "From": ["+14155550100"], "Timeout": ["25"],
                            "Url": ["https://cp.example/twilio/voice?callback_for=c1"]}
    assert (redirect.method, redirect.url.path) == ("POST", f"/2010-04-01/Accounts/{ACCOUNT}/Calls/{CALL}.json")
    assert form(redirect)["Twiml"] == ['<?xml version="1.0" encoding="UTF-8"?><Response>'
                                       '<Dial timeout="30" callerId="+14155550100">+18005550100</Dial></Response>']
    assert (fetch.method, fetch.url.path) == ("GET", f"/2010-04-01/Accounts/{ACCOUNT}/Calls/{CALL}.json")


async def test_refusals_and_bad_input_are_clear_errors() -> None:
    twilio = FakeTwilio(fail=(400, {"code": 21211, "message": "The 'To' number is not a valid phone number."}))
    with pytest.raises(TwilioError) as refused:
        await twilio.client().create_call("12", "+14155550100", twiml="<Response/>")
    assert refused.value.status == 400 and refused.value.code == 21211 and "not a valid" in str(refused.value)
    with pytest.raises(ValueError):
        TwilioRest("AC123", TOKEN)
    with pytest.raises(ValueError):
        await FakeTwilio().client().redirect_call("../../Accounts", "<Response/>")
    with pytest.raises(ValueError):
        await FakeTwilio().client().create_call("+1", "+2")  # neither url nor twiml
    assert "<Sip>sip:desk@pbx.example</Sip>" in dial_twiml("sip:desk@pbx.example")
    assert "&lt;x&gt;" in dial_twiml("<x>")  # no TwiML injection through a target


async def test_a_callback_through_the_calls_api_ends_in_the_status_twilio_reports() -> None:
    request = CallbackRequest("call-7", "+8613812345678", "orders", 0.0)
    for statuses, outcome in ((["queued", "ringing", "busy"], "busy"), (["ringing", "no-answer"], "no_answer"),
                              (["ringing", "in-progress"], "answered"), (["failed"], "unreachable")):
        twilio = FakeTwilio(statuses=statuses)
        place = twilio_place(twilio.client(), from_number="+14155550100", voice_url="https://cp.example/twilio/voice",
                             ring_timeout_s=5, poll_s=0.01)
        assert await place(request) == (outcome, CALL)
        assert form(twilio.requests[0])["Url"] == ["https://cp.example/twilio/voice?callback_for=call-7"]
    refused = FakeTwilio(fail=(400, {"code": 21211, "message": "bad number"}))
    place = twilio_place(refused.client(), from_number="+1", voice_url="https://x/twilio/voice", ring_timeout_s=5)
    assert await place(request) == ("rejected", None)


@dataclass
class Transferrer:
    line: CallConnection
    seen: list[InboundEvent] = field(default_factory=list)

    async def on_event(self, event: InboundEvent) -> None:
        self.seen.append(event)
        if isinstance(event, CallStarted):
            await self.line.send(Transfer("+18005550100"))


def test_a_transferred_media_stream_is_redirected_before_it_closes() -> None:
    redirected: list[tuple[str, str, bool]] = []

    async def media(websocket: WebSocket) -> None:
        async def redirect(call_sid: str, target: str) -> None:
            redirected.append((call_sid, target, websocket.client_state.name == "CONNECTED"))

        await serve_twilio(websocket, Transferrer, redirect=redirect)

    app = Starlette(routes=[WebSocketRoute("/media/twilio", media)])
    with TestClient(app) as client, client.websocket_connect("/media/twilio") as ws:
        ws.send_text(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        ws.send_text(json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": "MZ" + "1" * 32,
                                 "start": {"streamSid": "MZ" + "1" * 32, "callSid": CALL, "customParameters": {}}}))
        with pytest.raises(Exception):  # noqa: B017  (the server closes the stream after the redirect)
            while True:
                ws.receive_text()
    assert redirected == [(CALL, "+18005550100", True)]  # while the stream was still open
