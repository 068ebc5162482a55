"""The agent desktop's routes on the real HandoffService (fakeredis): sign-in (401 / 4401), an offer with its
context, accept (and 409 for the second agent), the call's audio both ways through the Redis bridge, hold,
hang-up and wrap-up, and a browser that goes away mid-call."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from handoff.bridge import FRAME_BYTES, HoldSignal
from handoff.config import HandoffConfig
from handoff.desk import UNAUTHORIZED_CLOSE
from handoff.events import AgentLeft, CallUpdate
from tests.desk_app import (
    ADMIN_KEY,
    AGENT_KEY,
    AS_SUPERVISOR,
    SUPERVISOR_KEY,
    CallerSide,
    Desk,
    desk_app,  # noqa: F401  (the `desk` fixture)
    receive_until,
)


def sign_in(desk: Desk, ws: WebSocketTestSession, token: str) -> dict[str, Any]:
    ws.send_json({"type": "hello", "token": token})
    return receive_until(ws, "welcome")


def test_rest_routes_need_a_known_agent_token(desk: Desk) -> None:
    token = desk.hire("Ann")
    missing = desk.client.get("/agent/api/me")
    assert missing.status_code == 401 and "Bearer" in missing.json()["detail"]
    wrong = desk.client.post("/agent/api/offers/call-1:1/accept", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json()["detail"] == "unknown or expired agent token"
    me = desk.client.get("/agent/api/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["name"] == "Ann" and me.json()["skills"] == {"orders": 3}


def test_the_websocket_closes_with_4401_for_a_bad_token(desk: Desk) -> None:
    with desk.client.websocket_connect("/agent/ws") as ws:
        ws.send_json({"type": "hello", "token": "not-a-token"})
        assert ws.receive_json() == {"type": "error", "code": 401, "message": "unknown or expired agent token"}
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == UNAUTHORIZED_CLOSE
    with desk.client.websocket_connect("/agent/ws") as ws:
        ws.send_text("hello?")  # not even JSON
        ws.receive_json()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == UNAUTHORIZED_CLOSE


def test_an_agent_takes_a_call_talks_holds_hangs_up_and_wraps_up(desk: Desk) -> None:
    token = desk.hire("Ann")
    with desk.client.websocket_connect(f"/agent/ws?token={token}") as ws:
        assert receive_until(ws, "welcome")["agent"]["name"] == "Ann"
        ws.send_json({"type": "status", "status": "available"})
        assert receive_until(ws, "status_changed")["status"] == "available"
        desk.call_in()
        offer = receive_until(ws, "offer")
        context = offer["context"]
        assert context["caller_number"] == "+16175550142" and context["contact"]["name"] == "Sarah Miller"
        assert context["transcript"][0]["text"] == "where is my order" and context["reason"] == "caller_asked"
        assert [i["intent"] for i in context["intents"]] == ["check_order_status", "talk_to_human"]
        orders = {o["number"]: o for o in context["recent_orders"]}  # her latest orders, from the order system
        assert orders["48215"]["status"] == "shipped" and "Refrigerator" in orders["48215"]["items"]

        ws.send_json({"type": "accept", "offer_id": offer["offer_id"]})
        connected = receive_until(ws, "connected")
        assert connected["call_id"] == "call-1" and connected["context"]["slots"] == {"order_number": "48215"}

        caller_frame, agent_frame = bytes([1, 2]) * (FRAME_BYTES // 2), bytes([3, 4]) * (FRAME_BYTES // 2)
        desk.run(desk.bridge.to_agent, "call-1", caller_frame)
        assert ws.receive_bytes() == caller_frame  # the caller's voice reaches the browser

        caller_side = CallerSide(desk, "call-1")
        ws.send_bytes(agent_frame)
        ws.send_json({"type": "hold", "on": True})
        ws.send_bytes(agent_frame)  # on hold: not sent to the caller
        ws.send_json({"type": "hold", "on": False})
        assert caller_side.wait_for(3) == [agent_frame, HoldSignal(True), HoldSignal(False)]
        caller_side.stop()
        ws.send_json({"type": "hang_up"})
        assert receive_until(ws, "call_ended")["reason"] == "agent_hung_up"
        ws.send_json({"type": "wrap_up", "disposition": "", "notes": "x"})
        assert "disposition" in receive_until(ws, "error")["message"]
        ws.send_json({"type": "wrap_up", "disposition": "resolved", "notes": "address changed"})
        assert receive_until(ws, "wrapped_up")["call_id"] == "call-1"
    service = desk.floor.service
    stored = desk.run(service.client.hgetall, service.keys.call("call-1"))
    assert (stored["disposition"], stored["notes"]) == ("resolved", "address changed")


def test_the_second_agent_to_accept_gets_409(tmp_path: Path) -> None:
    desk = Desk(tmp_path, HandoffConfig.model_validate({"queues": {"orders": {"strategy": "ringall"}}}))
    with desk.client:
        ann, bob = desk.hire("Ann"), desk.hire("Bob")
        with desk.client.websocket_connect(f"/agent/ws?token={ann}") as ws_ann, \
                desk.client.websocket_connect(f"/agent/ws?token={bob}") as ws_bob:
            for ws in (ws_ann, ws_bob):
                ws.send_json({"type": "status", "status": "available"})
                receive_until(ws, "status_changed")
            desk.call_in()
            offer_id = receive_until(ws_ann, "offer")["offer_id"]
            assert receive_until(ws_bob, "offer")["offer_id"] == offer_id
            first = desk.client.post(f"/agent/api/offers/{offer_id}/accept", headers={"Authorization": f"Bearer {ann}"})
            assert first.status_code == 200 and first.json()["call_id"] == "call-1"
            second = desk.client.post(f"/agent/api/offers/{offer_id}/accept", headers={"Authorization": f"Bearer {bob}"})
            assert second.status_code == 409 and "ann" in second.json()["detail"].lower()
            ws_bob.send_json({"type": "accept", "offer_id": offer_id})  # the same over the websocket
            assert receive_until(ws_bob, "error")["code"] == 409
            ws_bob.send_json({"type": "join", "call_id": "call-1"})  # not Bob's call
            assert receive_until(ws_bob, "error")["code"] == 403
            ws_ann.send_json({"type": "join", "call_id": "call-1"})  # after a REST accept, Ann bridges it
            assert receive_until(ws_ann, "connected")["call_id"] == "call-1"


def test_a_browser_gone_mid_call_sends_the_call_back_not_to_silence(desk: Desk) -> None:
    token = desk.hire("Ann")
    heard: list[CallUpdate] = []

    async def listen() -> None:
        async for update in desk.floor.service.call_events("call-1"):
            heard.append(update)

    with desk.client.websocket_connect(f"/agent/ws?token={token}") as ws:
        ws.send_json({"type": "status", "status": "available"})
        receive_until(ws, "status_changed")
        desk.call_in()
        listening = desk.run(lambda: [asyncio.ensure_future(listen())])[0]
        ws.send_json({"type": "accept", "offer_id": receive_until(ws, "offer")["offer_id"]})
        receive_until(ws, "connected")
    # The websocket closed without hanging up: the service moves the call on (queue or bot), never silence.

    async def wait_for_left() -> AgentLeft:
        for _ in range(200):
            left = [u for u in heard if isinstance(u, AgentLeft)]
            if left:
                return left[0]
            await asyncio.sleep(0.01)
        raise AssertionError(f"the caller heard no AgentLeft: {heard}")

    left = desk.run(wait_for_left)
    assert left.reason == "disconnected"
    desk.run(lambda: listening.cancel())


def test_pages_and_the_supervisor_snapshot(desk: Desk) -> None:
    for path, marker in (("/agent", "agent.js"), ("/agent/static/agent.js", "hello")):
        page = desk.client.get(path)
        assert page.status_code == 200 and marker in page.text, path
    assert desk.client.get("/agent/static/../../etc/passwd").status_code == 404
    assert desk.client.get("/agent/static/secrets.txt").status_code == 404
    token = desk.hire("Ann", "orders,tech")
    with desk.client.websocket_connect(f"/agent/ws?token={token}") as ws:
        ws.send_json({"type": "status", "status": "available"})
        receive_until(ws, "status_changed")
        view = desk.client.get("/supervisor/api/snapshot", headers=AS_SUPERVISOR).json()
        assert [(a["name"], a["status"]) for a in view["agents"]] == [("Ann", "available")]
        assert {q["name"] for q in view["queues"]} >= {"orders", "tech", "general"}
        desk.call_in()
        ws.send_json({"type": "accept", "offer_id": receive_until(ws, "offer")["offer_id"]})
        receive_until(ws, "connected")
        ws.send_json({"type": "hold", "on": True})
        receive_until(ws, "hold")
        view = desk.client.get("/supervisor/api/snapshot", headers=AS_SUPERVISOR).json()
        assert [(c["call_id"], c["agent_id"], c["on_hold"]) for c in view["live_calls"]] == [("call-1", "ann", True)]
        assert view["agents"][0]["status"] == "on_call"


def test_the_supervisor_page_needs_a_supervisor_or_admin_key(desk: Desk) -> None:
    page = desk.client.get("/supervisor")  # the sign-in form: 200, nothing refused before anyone typed
    assert page.status_code == 200 and 'action="/supervisor/login"' in page.text and "EventSource" not in page.text
    for path in ("/supervisor/api/snapshot", "/supervisor/events"):
        refused = desk.client.get(path)
        assert refused.status_code == 401 and "supervisor or admin API key" in refused.json()["detail"], path
        wrong = desk.client.get(path, headers={"Authorization": "Bearer cp_nope"})
        assert wrong.status_code == 401 and wrong.json()["detail"] == "unknown or revoked API key"
        agent = desk.client.get(path, headers={"Authorization": f"Bearer {AGENT_KEY}"})
        assert agent.status_code == 403 and "role 'agent'" in agent.json()["detail"]
    admin = desk.client.get("/supervisor/api/snapshot", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert admin.status_code == 200 and "queues" in admin.json()
    # The browser: the sign-in form keeps the key in an HttpOnly cookie for /supervisor only.
    bad = desk.client.post("/supervisor/login", data={"key": AGENT_KEY}, follow_redirects=False)
    assert bad.status_code == 403 and "may not see the floor" in bad.text and "callpilot_supervisor" not in bad.headers.get(
        "set-cookie", "")
    signed = desk.client.post("/supervisor/login", data={"key": SUPERVISOR_KEY}, follow_redirects=False)
    assert signed.status_code == 303 and signed.headers["location"] == "/supervisor"
    cookie = signed.headers["set-cookie"]
    assert "HttpOnly" in cookie and "Path=/supervisor" in cookie and "samesite=strict" in cookie.lower()
    # The cookie holds a server-side session id, never the API key.
    assert SUPERVISOR_KEY not in cookie and desk.client.cookies["callpilot_supervisor"] in desk.auth.sessions
    assert "Secure" not in cookie  # plain http, no https public URL
    page = desk.client.get("/supervisor")
    assert page.status_code == 200 and "supervisor.js" in page.text and "Callbacks requested" in page.text
    script = desk.client.get("/agent/static/supervisor.js")  # the floor's script: no data without a sign-in
    assert script.status_code == 200 and "EventSource" in script.text
    with desk.client.stream("GET", "/supervisor/events") as events:  # the stream takes the cookie too
        assert events.status_code == 200
        first = next(line for line in events.iter_lines() if line.startswith("data: "))
        assert "callbacks" in json.loads(first[6:])
    desk.keys.pop(SUPERVISOR_KEY)  # revoked: the cookie no longer opens the page
    revoked = desk.client.get("/supervisor")
    assert "EventSource" not in revoked.text and "unknown or revoked" in revoked.text
    desk.client.post("/supervisor/logout")
    assert "callpilot_supervisor" not in desk.client.cookies


def test_signing_out_ends_the_session_on_the_server(desk: Desk) -> None:
    desk.client.post("/supervisor/login", data={"key": SUPERVISOR_KEY}, follow_redirects=False)
    stolen = desk.client.cookies["callpilot_supervisor"]
    desk.client.post("/supervisor/logout")
    replayed = desk.client.get("/supervisor/api/snapshot", cookies={"callpilot_supervisor": stolen})
    assert replayed.status_code == 401 and "sign in again" in replayed.json()["detail"]


def test_the_cookie_is_secure_when_the_public_url_is_https(desk: Desk) -> None:
    desk.auth.secure_cookie = True  # callpilot sets it from public_url: https://... (TLS ends at a proxy)
    signed = desk.client.post("/supervisor/login", data={"key": SUPERVISOR_KEY}, follow_redirects=False)
    assert "Secure" in signed.headers["set-cookie"]


@pytest.mark.parametrize("how", ["cookie", "bearer"])
def test_a_revoked_key_ends_an_open_supervisor_stream(desk: Desk, how: str) -> None:
    headers = AS_SUPERVISOR if how == "bearer" else {}
    if how == "cookie":
        desk.client.post("/supervisor/login", data={"key": SUPERVISOR_KEY}, follow_redirects=False)
    with desk.client.stream("GET", "/supervisor/events", headers=headers) as events:
        lines = events.iter_lines()
        assert next(line for line in lines if line.startswith("data: "))
        desk.keys.pop(SUPERVISOR_KEY)  # revoked while the stream is open
        seen: list[str] = []
        for line in lines:  # a stream that ignored the revocation would go on: give up after a few snapshots
            seen.append(line)
            if line == "event: signed_out" or sum(x.startswith("data: ") for x in seen) > 4:
                break
        assert "event: signed_out" in seen, seen
        rest = list(lines)  # then the server ends the stream: this returns
    assert not any('"queues"' in line for line in rest), rest


def test_the_agent_sees_the_keys_the_caller_presses(desk: Desk) -> None:
    token = desk.hire("Ann")
    with desk.client.websocket_connect(f"/agent/ws?token={token}") as ws:
        ws.send_json({"type": "status", "status": "available"})
        receive_until(ws, "status_changed")
        desk.call_in()
        ws.send_json({"type": "accept", "offer_id": receive_until(ws, "offer")["offer_id"]})
        receive_until(ws, "connected")
        desk.run(desk.bridge.caller_key, "call-1", "5")
        assert receive_until(ws, "caller_key") == {"type": "caller_key", "call_id": "call-1", "digit": "5"}
        ws.send_json({"type": "hang_up"})
        receive_until(ws, "call_ended")
        desk.run(desk.bridge.caller_key, "call-1", "7")  # after the call: nobody on this desk listens
        ws.send_json({"type": "ping"})
        assert receive_until(ws, "pong") == {"type": "pong"}


def test_callbacks_show_on_the_supervisors_snapshot(desk: Desk) -> None:
    desk.call_in("call-9")
    desk.run(desk.floor.service.request_callback, "call-9")
    view = desk.client.get("/supervisor/api/snapshot", headers=AS_SUPERVISOR).json()
    assert [(c["call_id"], c["number"], c["queue"]) for c in view["callbacks"]] == [
        ("call-9", "+16175550142", "orders")]
    assert desk.client.post("/supervisor/api/callbacks/call-9/done").status_code == 401
    done = desk.client.post("/supervisor/api/callbacks/call-9/done", headers=AS_SUPERVISOR)
    assert done.status_code == 200 and done.json() == {"done": "call-9"}
    again = desk.client.post("/supervisor/api/callbacks/call-9/done", headers=AS_SUPERVISOR)
    assert again.status_code == 404 and "no callback" in again.json()["detail"]
    assert desk.client.get("/supervisor/api/snapshot", headers=AS_SUPERVISOR).json()["callbacks"] == []


def test_bad_messages_get_clear_errors(desk: Desk) -> None:
    token = desk.hire("Ann")
    with desk.client.websocket_connect(f"/agent/ws?token={token}") as ws:
        receive_until(ws, "welcome")
        ws.send_text("{not json")
        assert receive_until(ws, "error")["message"].startswith("not JSON")
        ws.send_json({"type": "dance"})
        assert receive_until(ws, "error")["message"] == "unknown message type 'dance'"
        ws.send_json({"type": "status", "status": "on_call"})
        assert "status must be one of" in receive_until(ws, "error")["message"]
        ws.send_json({"type": "hang_up"})
        assert receive_until(ws, "error") == {"type": "error", "code": 403, "message": "you are not on a call",
                                              "request": "hang_up"}
        ws.send_json({"type": "transfer", "queue": "tech", "agent": "bob"})
        assert "exactly one" in receive_until(ws, "error")["message"]
        ws.send_bytes(b"\x00\x01")  # audio while not on a call is dropped, not an error
        ws.send_json({"type": "ping"})
        assert receive_until(ws, "pong") == {"type": "pong"}


def test_transfer_to_another_queue_then_hand_back_to_the_bot(desk: Desk) -> None:
    ann, bob = desk.hire("Ann", "orders"), desk.hire("Bob", "tech")
    heard: list[CallUpdate] = []

    async def listen() -> None:
        async for update in desk.floor.service.call_events("call-1"):
            heard.append(update)

    with desk.client.websocket_connect(f"/agent/ws?token={ann}") as ws_ann, \
            desk.client.websocket_connect(f"/agent/ws?token={bob}") as ws_bob:
        for ws in (ws_ann, ws_bob):
            ws.send_json({"type": "status", "status": "available"})
            receive_until(ws, "status_changed")
        desk.call_in()
        listening = desk.run(lambda: [asyncio.ensure_future(listen())])[0]
        ws_ann.send_json({"type": "accept", "offer_id": receive_until(ws_ann, "offer")["offer_id"]})
        receive_until(ws_ann, "connected")
        ws_ann.send_json({"type": "transfer", "queue": "tech"})
        assert receive_until(ws_ann, "call_ended")["call_id"] == "call-1"
        desk.run(desk.floor.service.router.tick)
        offer = receive_until(ws_bob, "offer")
        assert offer["context"]["call_id"] == "call-1" and offer["context"]["queue"] == "tech"
        ws_bob.send_json({"type": "accept", "offer_id": offer["offer_id"]})
        receive_until(ws_bob, "connected")
        ws_bob.send_json({"type": "hand_back"})
        assert receive_until(ws_bob, "call_ended")["call_id"] == "call-1"
        ws_bob.send_json({"type": "hand_back"})  # nothing left to hand back
        assert receive_until(ws_bob, "error")["code"] == 403

        def reasons() -> list[tuple[str, bool]]:
            return [(u.reason, u.requeued) for u in heard if isinstance(u, AgentLeft)]

        deadline = time.monotonic() + 5
        while len(reasons()) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert reasons() == [("transfer", True), ("hand_back", False)]
        desk.run(listening.cancel)


def test_a_blind_transfer_to_an_outside_number_ends_the_agents_call_and_tells_the_caller_where(desk: Desk) -> None:
    ann = desk.hire("Ann", "orders")
    heard: list[CallUpdate] = []

    async def listen() -> None:
        async for update in desk.floor.service.call_events("call-1"):
            heard.append(update)

    with desk.client.websocket_connect(f"/agent/ws?token={ann}") as ws:
        ws.send_json({"type": "status", "status": "available"})
        receive_until(ws, "status_changed")
        desk.call_in()
        listening = desk.run(lambda: [asyncio.ensure_future(listen())])[0]
        ws.send_json({"type": "accept", "offer_id": receive_until(ws, "offer")["offer_id"]})
        receive_until(ws, "connected")
        ws.send_json({"type": "transfer", "number": "call me maybe"})
        assert "cannot transfer" in receive_until(ws, "error")["message"]  # not a number: the call stays
        ws.send_json({"type": "transfer", "number": "+8613812345678"})
        ended = receive_until(ws, "call_ended")
        assert (ended["call_id"], ended["reason"]) == ("call-1", "transferred")
        deadline = time.monotonic() + 5
        while not any(isinstance(u, AgentLeft) for u in heard) and time.monotonic() < deadline:
            time.sleep(0.01)
        left = next(u for u in heard if isinstance(u, AgentLeft))
        assert (left.reason, left.requeued, left.target) == ("transfer_out", False, "+8613812345678")
        record = desk.run(desk.floor.service.calls.get, "call-1")
        assert record.state.value == "ended"
        desk.run(listening.cancel)
