"""What a supervisor does on the floor, beside watching it (`handoff.supervisor_page`): change a queue's settings
or close it, set an agent away or sign them out, and listen in on a live call, whisper to its agent or barge in.
Every action is audited (who, what, which call/agent/queue) through the page's `SupervisorAuth`.

Monitoring (`/supervisor/ws/monitor?call_id=...`, signed in like the page): the server sends the caller's voice
with the agent's mixed in as binary PCM16 frames (16 kHz, 20 ms) and JSON updates (`monitoring`, `mode`,
`ended`, `error`); the browser sends `{"type": "mode", "mode": "listen" | "whisper" | "barge"}` and, while
whispering or barging, its microphone as PCM16 frames. Whisper reaches the agent only (the bridge's `whisper`
channel, mixed into what the agent hears); barge reaches both sides.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from fastapi import APIRouter, HTTPException, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse

from handoff.bridge import AudioBridge, BadAudio
from handoff.desk_parts import DeskParts, Parts, SupervisorGate, VoicemailBox
from handoff.errors import HandoffError, IllegalHandoffTransition, UnknownAgent, UnknownQueue
from handoff.model import HandoffState
from handoff.queue_settings import BadQueueChange
from handoff.service import HandoffService

log = logging.getLogger(__name__)

MODES = ("listen", "whisper", "barge")
NOT_LIVE_CLOSE = 4404
UNAUTHORIZED_CLOSE = 4401
CALL_CHECK_S = 1.0
router = APIRouter()


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError as exc:
        raise HTTPException(400, f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise HTTPException(400, "expected a JSON object")
    return body


# Voicemails.


def box(parts: DeskParts) -> VoicemailBox:
    if parts.voicemails is None:
        raise HTTPException(503, "no call records here (the records database is not configured)")
    return parts.voicemails


@router.get("/supervisor/api/voicemails")
async def voicemail_list(parts: Parts, request: Request) -> list[dict[str, Any]]:
    """Messages callers left (overflow to voicemail) and nobody marked done yet, newest first."""
    await parts.gate.require(request)
    return await box(parts).waiting()


@router.get("/supervisor/api/voicemails/{call_id}.wav")
async def voicemail_audio(parts: Parts, call_id: str, request: Request) -> FileResponse:
    """The message as a WAV; every play is audited."""
    credential = await parts.gate.require(request)
    path = await box(parts).audio(call_id)
    if path is None:
        raise HTTPException(404, f"no voicemail for call {call_id[:80]!r}")
    await parts.gate.audit(credential, "voicemail.play", call_id)
    return FileResponse(path, media_type="audio/wav")


@router.post("/supervisor/api/voicemails/{call_id}/done")
async def voicemail_done(parts: Parts, call_id: str, request: Request) -> dict[str, Any]:
    credential = await parts.gate.require(request)
    if not await box(parts).done(call_id):
        raise HTTPException(404, f"no voicemail for call {call_id[:80]!r}")
    await parts.gate.audit(credential, "voicemail.done", call_id)
    return {"done": call_id}


# Queues.


@router.get("/supervisor/api/queues")
async def queues(parts: Parts, request: Request) -> list[dict[str, Any]]:
    """Each queue's changeable settings as they apply now, and which of them a supervisor changed."""
    await parts.gate.require(request)
    return await parts.running()[0].queues.describe()


@router.patch("/supervisor/api/queues/{name}")
async def change_queue(parts: Parts, name: str, request: Request) -> dict[str, Any]:
    """{"strategy": "round_robin", "ring_timeout_s": 15, "max_wait_s": 240, "overflow": "voicemail",
    "overflow_choices": ["callback", "voicemail"], "closed": true}: any of these; the next offer follows."""
    credential = await parts.gate.require(request)
    changes = await _json_body(request)
    try:
        settings = await parts.running()[0].queues.change(name, changes)
    except UnknownQueue as exc:
        raise HTTPException(404, str(exc)) from None
    except BadQueueChange as exc:
        raise HTTPException(400, str(exc)) from None
    await parts.gate.audit(credential, "queue.change", name, changes=changes)
    return settings


@router.post("/supervisor/api/queues/{name}/reset")
async def reset_queue(parts: Parts, name: str, request: Request) -> dict[str, Any]:
    """Back to the configuration file's settings (and open, if a supervisor had closed it)."""
    credential = await parts.gate.require(request)
    try:
        settings = await parts.running()[0].queues.reset(name)
    except UnknownQueue as exc:
        raise HTTPException(404, str(exc)) from None
    await parts.gate.audit(credential, "queue.reset", name)
    return settings


# Agents.


@router.post("/supervisor/api/agents/{agent_id}/status")
async def agent_status(parts: Parts, agent_id: str, request: Request) -> dict[str, Any]:
    """{"status": "away"} (not during a call: 409) or {"status": "signed_out"} (the desktop closes; a live
    call goes back to the front of its queue)."""
    credential = await parts.gate.require(request)
    status = (await _json_body(request)).get("status")
    service = parts.running()[0]
    try:
        if status == "away":
            await service.force_away(agent_id)
        elif status == "signed_out":
            await service.sign_out(agent_id)
        else:
            raise HTTPException(400, 'send {"status": "away"} or {"status": "signed_out"}')
    except UnknownAgent as exc:
        raise HTTPException(404, str(exc)) from None
    except IllegalHandoffTransition:
        raise HTTPException(409, f"{agent_id} is on a call: set them away when it ends") from None
    except HandoffError as exc:
        raise HTTPException(409, str(exc)) from None
    await parts.gate.audit(credential, f"agent.{status}", agent_id)
    return {"agent_id": agent_id, "status": status}


# Monitoring a live call.


@router.websocket("/supervisor/ws/monitor")
async def monitor(parts: Parts, websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        credential = await parts.gate.require(websocket)
    except HTTPException as exc:
        await websocket.send_json({"type": "error", "code": exc.status_code, "message": exc.detail})
        await websocket.close(UNAUTHORIZED_CLOSE, "sign in as a supervisor")
        return
    call_id = websocket.query_params.get("call_id", "")
    service, bridge = parts.running()
    record = (await service.calls.many([call_id])).get(call_id) if call_id else None
    if record is None or record.state is not HandoffState.CONNECTED:
        await websocket.send_json({"type": "error", "code": 404, "message": f"no live call {call_id!r}"})
        await websocket.close(NOT_LIVE_CLOSE, "no such live call")
        return
    await Monitor(websocket, service, bridge, parts.gate, credential, call_id, record.agent_id or "").run()


class Monitor:
    """One supervisor monitoring one live call until the call ends or the page closes."""

    def __init__(self, websocket: WebSocket, service: HandoffService, bridge: AudioBridge, gate: SupervisorGate,
                 credential: tuple[str, str] | None, call_id: str, agent_id: str) -> None:
        self.websocket, self.service, self.bridge, self.gate = websocket, service, bridge, gate
        self.credential, self.call_id, self.agent_id = credential, call_id, agent_id
        self.mode = "listen"

    async def run(self) -> None:
        await self.gate.audit(self.credential, "call.listen", self.call_id, agent_id=self.agent_id)
        ready = asyncio.Event()
        tasks = {asyncio.create_task(self._pump(ready), name=f"monitor-{self.call_id}"),
                 asyncio.create_task(self._watch(), name=f"monitor-watch-{self.call_id}")}
        await asyncio.wait({asyncio.ensure_future(ready.wait()), *tasks}, return_when=asyncio.FIRST_COMPLETED)
        await self.websocket.send_json({"type": "monitoring", "call_id": self.call_id, "agent_id": self.agent_id,
                                        "mode": self.mode})
        receiving = asyncio.create_task(self._receive(), name=f"monitor-receive-{self.call_id}")
        try:
            await asyncio.wait({receiving, *tasks}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (receiving, *tasks):
                task.cancel()
            await asyncio.wait({receiving, *tasks}, timeout=2.0)
            with contextlib.suppress(Exception):
                await self.websocket.close()

    async def _pump(self, ready: asyncio.Event) -> None:
        async with self.bridge.listen(self.call_id, "supervisor") as heard:
            ready.set()
            async for item in heard:
                if isinstance(item, bytes):
                    await self.websocket.send_bytes(item)

    async def _watch(self) -> None:
        """Ends the monitoring once the call is no longer connected (hung up, handed back, transferred), or once
        the key or session that opened it is revoked (checked every second, like the floor's event stream)."""
        while True:
            await asyncio.sleep(CALL_CHECK_S)
            status, message = await self.gate.verdict(self.credential)
            if status != 200:
                with contextlib.suppress(Exception):
                    await self.websocket.send_json({"type": "error", "code": status, "message": message})
                return
            record = (await self.service.calls.many([self.call_id], light=True)).get(self.call_id)
            if record is None or record.state is not HandoffState.CONNECTED:
                with contextlib.suppress(Exception):
                    await self.websocket.send_json({"type": "ended", "call_id": self.call_id})
                return

    async def _receive(self) -> None:
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                message = await self.websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                if message.get("bytes") is not None:
                    await self._voice(message["bytes"])
                elif message.get("text") is not None:
                    await self._command(message["text"])

    async def _voice(self, pcm16: bytes) -> None:
        if self.mode == "listen":
            return  # a listener's microphone goes nowhere
        try:
            await self.bridge.whisper(self.call_id, pcm16, barge=self.mode == "barge")
        except BadAudio as exc:
            await self.websocket.send_json({"type": "error", "code": 400, "message": str(exc)})

    async def _command(self, text: str) -> None:
        try:
            data = json.loads(text)
            mode = data.get("mode") if isinstance(data, dict) and data.get("type") == "mode" else None
        except ValueError:
            mode = None
        if mode not in MODES:
            await self.websocket.send_json({"type": "error", "code": 400,
                                            "message": 'send {"type": "mode", "mode": "listen|whisper|barge"}'})
            return
        if mode != self.mode:
            self.mode = str(mode)
            await self.gate.audit(self.credential, f"call.{self.mode}", self.call_id, agent_id=self.agent_id)
            log.info("supervisor %s call %s (agent %s)", self.mode, self.call_id, self.agent_id)
        await self.websocket.send_json({"type": "mode", "call_id": self.call_id, "mode": self.mode})
