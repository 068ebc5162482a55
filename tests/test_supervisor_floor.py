"""The supervisor acting on the floor, through the real desk routes on the real HandoffService (fakeredis): queue
settings changed and followed by the next offer, a queue closed for a holiday, agents set away and signed out,
listening in on a live call, whispering to the agent (the caller hears nothing) and barging in; every action
audited. The agent's side: configurable dispositions, phone keys pressed to the caller."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest
from fakeredis import aioredis as fake_aioredis
from starlette.websockets import WebSocketDisconnect

from handoff.bridge import FRAME_BYTES, FrameMixer, HoldSignal
from handoff.config import HandoffConfig
from handoff.desk_session import SIGNED_OUT_CLOSE
from handoff.events import Closed
from handoff.model import AgentStatus
from handoff.queue_settings import LiveQueues
from handoff.shift import day_start, shift_today, tally
from handoff.testing import decision, make_floor
from tests.desk_app import (
    AGENT_KEY,
    AS_SUPERVISOR,
    SUPERVISOR_KEY,
    CallerSide,
    Desk,
    desk_app,  # noqa: F401  (the `desk` fixture)
    receive_until,
)
from voice_gateway.pipeline.dtmf_detect import DtmfDetector


def pcm(value: int, frames: int = 1) -> bytes:
    return np.full(FRAME_BYTES // 2 * frames, value, dtype="<i2").tobytes()


def level(frame: bytes) -> set[int]:
    return set(np.frombuffer(frame, dtype="<i2").tolist())


# The mixer, sans I/O.

def test_the_mixer_adds_the_second_voice_into_the_main_frames_and_clips() -> None:
    mixer = FrameMixer()
    assert mixer.main(pcm(1000)) == pcm(1000)  # nothing waiting: the frame as it came
    assert mixer.extra(pcm(100)) is None and mixer.extra(pcm(200)) is None  # kept to be mixed
    assert level(mixer.main(pcm(1000))) == {1100}
    assert level(mixer.main(pcm(32700))) == {32767}  # 32700 + 200, clipped
    assert mixer.main(pcm(5)) == pcm(5)


def test_the_second_voice_plays_alone_when_the_main_stream_stops_and_never_piles_up() -> None:
    mixer = FrameMixer(backlog=2, limit=5)
    alone = [mixer.extra(pcm(v)) for v in (1, 2, 3, 4)]
    assert alone == [None, None, pcm(1), pcm(2)]  # 40 ms behind, then one out per one in
    for v in range(10, 20):
        mixer.extra(pcm(v))
    assert len(mixer._waiting) <= 5  # the oldest are dropped
    half = pcm(7)[: FRAME_BYTES // 2]  # a short main frame takes only its length of the waiting voice
    fresh = FrameMixer()
    fresh.extra(pcm(100))
    assert level(fresh.main(half)) == {107}
    assert level(fresh.main(pcm(0))) == {0, 100}  # the rest of the waiting frame, then silence


# Queues.

def test_a_supervisor_changes_a_queues_strategy_and_the_next_offer_follows(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    with desk.client:
        ann, bob = desk.hire("Ann"), desk.hire("Bob")
        with desk.client.websocket_connect(f"/agent/ws?token={ann}") as ws_ann, \
                desk.client.websocket_connect(f"/agent/ws?token={bob}") as ws_bob:
            for ws in (ws_ann, ws_bob):
                ws.send_json({"type": "status", "status": "available"})
                receive_until(ws, "status_changed")
            assert desk.client.get("/supervisor/api/queues").status_code == 401
            listed = desk.client.get("/supervisor/api/queues", headers=AS_SUPERVISOR).json()
            orders = next(q for q in listed if q["queue"] == "orders")
            assert (orders["strategy"], orders["closed"], orders["changed"]) == ("longest_idle", False, [])

            changed = desk.client.patch("/supervisor/api/queues/orders", headers=AS_SUPERVISOR,
                                        json={"strategy": "ringall", "ring_timeout_s": 12})
            assert changed.status_code == 200, changed.text
            assert (changed.json()["strategy"], changed.json()["ring_timeout_s"]) == ("ringall", 12)
            assert changed.json()["changed"] == ["ring_timeout_s", "strategy"]
            desk.call_in()
            offer = receive_until(ws_ann, "offer")  # ringall: both ring for the same call
            assert receive_until(ws_bob, "offer")["offer_id"] == offer["offer_id"]
            assert offer["expires_at"] - desk.floor.clock.now == pytest.approx(12)

    key, action, target, detail = desk.auth.audited[-1]
    assert (key, action, target, detail) == (SUPERVISOR_KEY, "queue.change", "orders",
                                             {"changes": {"strategy": "ringall", "ring_timeout_s": 12}})


def test_bad_queue_changes_are_refused_whole_and_a_reset_restores_the_configuration(desk: Desk) -> None:
    as_agent = {"Authorization": f"Bearer {AGENT_KEY}"}
    assert desk.client.patch("/supervisor/api/queues/orders", headers=as_agent, json={"closed": True}).status_code == 403
    cases = [({"overflow": "transfer"}, "overflow_target"), ({"ring_timeout_s": -1}, "greater than 0"),
             ({"strategy": "loudest"}, "strategy"), ({"agent_order": ["x"]}, "cannot change agent_order"), ({}, "one or more")]
    for body, words in cases:
        refused = desk.client.patch("/supervisor/api/queues/orders", headers=AS_SUPERVISOR, json=body)
        assert refused.status_code == 400 and words in refused.json()["detail"], (body, refused.text)
    assert desk.client.patch("/supervisor/api/queues/nope", headers=AS_SUPERVISOR, json={"closed": True}).status_code == 404
    orders = next(q for q in desk.client.get("/supervisor/api/queues", headers=AS_SUPERVISOR).json()
                  if q["queue"] == "orders")
    assert orders["changed"] == [] and orders["overflow"] == "callback"  # nothing of the refused changes stayed

    desk.client.patch("/supervisor/api/queues/orders", headers=AS_SUPERVISOR,
                      json={"overflow": "transfer", "overflow_target": "+861012345678"})
    same_as_config = desk.client.patch("/supervisor/api/queues/orders", headers=AS_SUPERVISOR, json={"overflow": "callback"})
    assert same_as_config.json()["changed"] == ["overflow_target"]  # a field set back to the config's value is dropped
    reset = desk.client.post("/supervisor/api/queues/orders/reset", headers=AS_SUPERVISOR)
    assert reset.status_code == 200 and reset.json()["overflow_target"] is None and reset.json()["changed"] == []
    assert [a for _, a, _, _ in desk.auth.audited] == ["queue.change", "queue.change", "queue.reset"]


def test_a_queue_closed_for_a_holiday_tells_new_callers_and_opens_again(desk: Desk) -> None:
    token = desk.hire("Ann")
    service = desk.floor.service
    heard: list[object] = []

    async def follow(call_id: str) -> None:
        async for update in service.call_events(call_id):
            heard.append(update)

    with desk.client.websocket_connect(f"/agent/ws?token={token}") as ws:
        ws.send_json({"type": "status", "status": "available"})
        receive_until(ws, "status_changed")
        assert desk.client.patch("/supervisor/api/queues/orders", headers=AS_SUPERVISOR,
                                 json={"closed": True}).json()["closed"] is True
        snapshot = desk.client.get("/supervisor/api/snapshot", headers=AS_SUPERVISOR).json()
        assert next(q for q in snapshot["queues"] if q["name"] == "orders")["open"] is False
        desk.call_in("holiday-1")
        task = desk.run(lambda: [asyncio.ensure_future(follow("holiday-1"))])[0]
        deadline = time.monotonic() + 5
        while not any(isinstance(u, Closed) for u in heard) and time.monotonic() < deadline:
            time.sleep(0.02)
        desk.run(task.cancel)
        assert any(isinstance(u, Closed) and u.opens_at is None for u in heard), heard

        desk.client.post("/supervisor/api/queues/orders/reset", headers=AS_SUPERVISOR)
        desk.call_in("after-1")
        assert receive_until(ws, "offer")["context"]["call_id"] == "after-1"


# Agents.

def test_a_supervisor_sets_an_agent_away_and_signs_another_out(desk: Desk) -> None:
    ann, bob = desk.hire("Ann"), desk.hire("Bob")
    with desk.client.websocket_connect(f"/agent/ws?token={ann}") as ws_ann, \
            desk.client.websocket_connect(f"/agent/ws?token={bob}") as ws_bob:
        for ws in (ws_ann, ws_bob):
            ws.send_json({"type": "status", "status": "available"})
            receive_until(ws, "status_changed")
        away = desk.client.post("/supervisor/api/agents/ann/status", headers=AS_SUPERVISOR, json={"status": "away"})
        assert away.status_code == 200, away.text
        assert receive_until(ws_ann, "status_changed")["status"] == "away"
        assert desk.client.post("/supervisor/api/agents/ann/status", headers=AS_SUPERVISOR,
                                json={"status": "gone"}).status_code == 400
        assert desk.client.post("/supervisor/api/agents/zed/status", headers=AS_SUPERVISOR,
                                json={"status": "away"}).status_code == 404

        desk.call_in()
        offer = receive_until(ws_bob, "offer")
        ws_bob.send_json({"type": "accept", "offer_id": offer["offer_id"]})
        receive_until(ws_bob, "connected")
        busy = desk.client.post("/supervisor/api/agents/bob/status", headers=AS_SUPERVISOR, json={"status": "away"})
        assert busy.status_code == 409 and "on a call" in busy.json()["detail"]

        out = desk.client.post("/supervisor/api/agents/bob/status", headers=AS_SUPERVISOR, json={"status": "signed_out"})
        assert out.status_code == 200
        assert receive_until(ws_bob, "signed_out")["by"] == "supervisor"
        with pytest.raises(WebSocketDisconnect) as closed:
            for _ in range(50):
                ws_bob.receive_text()
        assert closed.value.code == SIGNED_OUT_CLOSE
    service = desk.floor.service
    assert desk.run(service.presence.state, "bob").status is AgentStatus.OFFLINE
    record = desk.run(service.calls.get, "call-1")
    assert record.agent_id is None or record.state.value != "connected"  # the caller is not left with nobody
    assert [(a, t) for _, a, t, _ in desk.auth.audited] == [("agent.away", "ann"), ("agent.signed_out", "bob")]


# Listening in, whispering, barging in.

def test_listen_whisper_and_barge_reach_the_right_ears_and_are_audited(desk: Desk) -> None:
    token = desk.hire("Ann")
    with desk.client.websocket_connect(f"/agent/ws?token={token}") as agent:
        agent.send_json({"type": "status", "status": "available"})
        receive_until(agent, "status_changed")
        with desk.client.websocket_connect("/supervisor/ws/monitor?call_id=call-1", headers=AS_SUPERVISOR) as none:
            assert none.receive_json()["code"] == 404  # no such live call yet
        desk.call_in()
        agent.send_json({"type": "accept", "offer_id": receive_until(agent, "offer")["offer_id"]})
        receive_until(agent, "connected")
        caller = CallerSide(desk, "call-1")

        with desk.client.websocket_connect("/supervisor/ws/monitor?call_id=call-1") as refused:
            assert refused.receive_json()["code"] == 401
        with desk.client.websocket_connect("/supervisor/ws/monitor?call_id=call-1", headers=AS_SUPERVISOR) as sup:
            assert receive_until(sup, "monitoring")["mode"] == "listen"
            agent.send_bytes(pcm(300))  # the agent speaks: mixed into what the supervisor hears of the caller
            assert caller.wait_for(1) == [pcm(300)]
            desk.run(desk.bridge.to_agent, "call-1", pcm(1000))
            assert level(sup.receive_bytes()) == {1300}
            assert level(agent.receive_bytes()) == {1000}

            sup.send_bytes(pcm(7))  # a listener's microphone goes nowhere
            sup.send_json({"type": "mode", "mode": "whisper"})
            assert receive_until(sup, "mode")["mode"] == "whisper"
            for _ in range(3):
                sup.send_bytes(pcm(50))
            assert agent.receive_bytes() == pcm(50)  # the agent hears the whisper (alone: the caller is quiet)
            sup.send_json({"type": "mode", "mode": "barge"})
            assert receive_until(sup, "mode")["mode"] == "barge"
            for _ in range(3):
                sup.send_bytes(pcm(60))
            heard = caller.wait_for(2)
            assert heard[1] == pcm(60), heard  # the caller hears the supervisor only once they barge in
            assert all(not isinstance(item, bytes) or level(item) & {7, 50} == set() for item in heard)
            sup.send_json({"type": "mode", "mode": "shout"})
            assert receive_until(sup, "error")["code"] == 400
        with desk.client.websocket_connect("/supervisor/ws/monitor?call_id=call-1", headers=AS_SUPERVISOR) as sup:
            receive_until(sup, "monitoring")
            desk.keys.pop(SUPERVISOR_KEY)  # the key is revoked while listening: the monitoring ends
            assert receive_until(sup, "error", limit=500)["code"] == 401
            desk.keys[SUPERVISOR_KEY] = "supervisor"
        with desk.client.websocket_connect("/supervisor/ws/monitor?call_id=call-1", headers=AS_SUPERVISOR) as sup:

            agent.send_json({"type": "hang_up"})
            assert receive_until(sup, "ended")["call_id"] == "call-1"
        caller.stop()
    actions = [(a, t) for _, a, t, _ in desk.auth.audited]
    assert actions == [("call.listen", "call-1"), ("call.whisper", "call-1"), ("call.barge", "call-1"),
                       ("call.listen", "call-1"), ("call.listen", "call-1")]


# The agent's side.

def test_wrap_up_takes_only_the_configured_dispositions(tmp_path: Path) -> None:
    config = HandoffConfig.model_validate({"dispositions": [{"code": "sale", "label": "Sale made"},
                                                            {"code": "no_sale", "label": "No sale"}]})
    desk = Desk(tmp_path, config)
    with desk.client:
        token = desk.hire("Ann")
        with desk.client.websocket_connect(f"/agent/ws?token={token}") as ws:
            welcome = receive_until(ws, "welcome")
            assert welcome["dispositions"] == [{"code": "sale", "label": "Sale made"}, {"code": "no_sale", "label": "No sale"}]
            assert (welcome["status"], welcome["since"]) == ("offline", None)
            ws.send_json({"type": "status", "status": "available"})
            receive_until(ws, "status_changed")
            desk.call_in()
            ws.send_json({"type": "accept", "offer_id": receive_until(ws, "offer")["offer_id"]})
            receive_until(ws, "connected")
            ws.send_json({"type": "hang_up"})
            receive_until(ws, "call_ended")
            ws.send_json({"type": "wrap_up", "disposition": "resolved"})
            assert "one of: sale, no_sale" in receive_until(ws, "error")["message"]
            ws.send_json({"type": "wrap_up", "disposition": "sale", "notes": "two chairs"})
            assert receive_until(ws, "wrapped_up")["call_id"] == "call-1"
    with pytest.raises(ValueError, match="twice"):
        HandoffConfig.model_validate({"dispositions": [{"code": "a", "label": "A"}, {"code": "a", "label": "B"}]})


def test_keys_the_agent_presses_reach_the_caller_as_real_tones(desk: Desk) -> None:
    token = desk.hire("Ann")
    with desk.client.websocket_connect(f"/agent/ws?token={token}") as ws:
        ws.send_json({"type": "status", "status": "available"})
        receive_until(ws, "status_changed")
        ws.send_json({"type": "key", "digit": "5"})
        assert receive_until(ws, "error")["code"] == 403  # not on a call
        desk.call_in()
        ws.send_json({"type": "accept", "offer_id": receive_until(ws, "offer")["offer_id"]})
        receive_until(ws, "connected")
        caller = CallerSide(desk, "call-1")
        for digit in "9#":
            ws.send_json({"type": "key", "digit": digit})
            assert receive_until(ws, "key_sent")["digit"] == digit
        ws.send_json({"type": "key", "digit": "55"})
        assert "not a phone key" in receive_until(ws, "error")["message"]
        heard = caller.wait_for(14)  # 2 x 160 ms of tone and pause, less the frames still in the mixer
        caller.stop()
    detector = DtmfDetector(16000)
    keys = [k for item in heard if isinstance(item, bytes) for k in detector.accept(item)]
    assert keys == ["9", "#"]
    assert not any(isinstance(item, HoldSignal) for item in heard)


def test_another_process_sees_a_queue_change_and_other_queues_keep_their_configuration(desk: Desk) -> None:
    desk.client.patch("/supervisor/api/queues/tech", headers=AS_SUPERVISOR, json={"max_wait_s": 30})
    service = desk.floor.service
    other = LiveQueues(service.client, service.keys, service.config)  # as another process would build it
    effective = desk.run(other.effective)
    assert effective.queues["tech"].max_wait_s == 30 and effective.queues["orders"].max_wait_s == 300
    assert service.config.queues["tech"].max_wait_s == 300  # the configuration itself is unchanged


def test_wallboard_thresholds_are_checked_and_merged_with_the_defaults() -> None:
    config = HandoffConfig.model_validate({"wallboard": {"waiting": {"amber": 5, "red": 10}}})
    assert config.wallboard["waiting"].red == 10 and config.wallboard["longest_wait_s"].amber == 60
    with pytest.raises(ValueError, match=r"red \(2\.0\) must be above amber"):
        HandoffConfig.model_validate({"wallboard": {"waiting": {"amber": 5, "red": 2}}})
    with pytest.raises(ValueError, match="must be below amber"):
        HandoffConfig.model_validate({"wallboard": {"service_level": {"amber": 0.8, "red": 0.9, "below": True}}})
    with pytest.raises(ValueError, match="no wallboard number queue_length"):
        HandoffConfig.model_validate({"wallboard": {"queue_length": {"amber": 1, "red": 2}}})


# An agent's day: calls today and occupancy.

def test_occupancy_is_busy_time_over_staffed_time_and_calls_count_today(tmp_path: Path) -> None:
    """Ann signs in at 08:00 (clock), waits 10 min, takes a call of 5 min with 1 min of wrap-up, is away 15 min,
    available 4 min: busy 6 min of 20 staffed (35 signed in, less 15 away) = 0.3. Bob signs in and out again."""
    async def go() -> None:
        client = fake_aioredis.FakeRedis(decode_responses=True)
        floor = make_floor(client, tmp_path)
        service, clock = floor.service, floor.clock
        await service.start(run_router=False)
        ann, bob = floor.hire("Ann", {"orders": 3}), floor.hire("Bob", {"orders": 3})
        await service.set_status(ann.agent_id, AgentStatus.AVAILABLE)
        await service.set_status(bob.agent_id, AgentStatus.AVAILABLE)
        clock.advance(600)
        await service.set_status(bob.agent_id, AgentStatus.OFFLINE)
        await service.request("day-1", decision(created_at=clock.now))
        await service.router.tick()
        offer = (await service.presence.state(ann.agent_id)).offer_id
        assert offer is not None
        await service.accept(ann.agent_id, offer)
        clock.advance(300)
        await service.hang_up(ann.agent_id, "day-1")
        clock.advance(60)
        await service.wrap_up(ann.agent_id, "day-1", "resolved", "")
        await service.set_status(ann.agent_id, AgentStatus.AWAY)
        clock.advance(900)
        await service.set_status(ann.agent_id, AgentStatus.AVAILABLE)
        clock.advance(240)
        view = {a.agent_id: a for a in (await service.snapshot()).agents}
        assert (view[ann.agent_id].calls_today, view[ann.agent_id].occupancy) == (1, pytest.approx(0.3, abs=0.002))
        assert (view[bob.agent_id].calls_today, view[bob.agent_id].occupancy) == (0, 0.0)  # 10 min staffed, idle
        await service.stop()

    asyncio.run(go())


def test_the_day_starts_at_the_floors_midnight_and_a_state_across_it_counts_its_part_of_today() -> None:
    day, midnight = day_start(1_800_000_000.0, "Asia/Shanghai")  # 2027-01-15 16:00 in Shanghai
    assert (day, midnight) == ("2027-01-15", 1_800_000_000.0 - 16 * 3600)
    # On a call from 23:50 to 00:10: ten minutes of it are today's.
    added = tally(AgentStatus.ON_CALL, midnight - 600, midnight - 3600, AgentStatus.WRAP_UP, "call_ended",
                  midnight + 600, midnight)
    assert added == {"busy_s": 600.0}
    signed_out = tally(AgentStatus.AVAILABLE, midnight + 60, midnight - 3600, AgentStatus.OFFLINE, "logout",
                       midnight + 1200, midnight)
    assert signed_out == {"signed_in_s": 1200.0}
    now = shift_today({"busy_s": "120", "calls": "2"}, AgentStatus.WRAP_UP, midnight + 1000, midnight + 10,
                      midnight + 1030, midnight)
    assert (now.calls, now.busy_s, now.signed_in_s) == (2, 150.0, 1020.0)
    assert shift_today({}, AgentStatus.AVAILABLE, midnight + 5, midnight + 5, midnight + 30, midnight).occupancy is None
    with pytest.raises(ValueError, match="unknown time zone"):
        HandoffConfig.model_validate({"timezone": "Mars/Olympus"})
