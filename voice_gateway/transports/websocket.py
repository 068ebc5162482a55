"""Serve Twilio Media Streams and the browser softphone over a Starlette/FastAPI `WebSocket`."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from voice_gateway.transports.connection import CallLimits, HandlerFactory, run_call
from voice_gateway.transports.softphone import SoftphoneCodec
from voice_gateway.transports.twilio import TwilioCodec


class StarletteSocket:
    """`SocketIO` over an accepted Starlette websocket: text messages stay str, binary stay bytes."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket

    async def receive(self) -> bytes | str | None:
        try:
            message = await self.websocket.receive()
        except (WebSocketDisconnect, RuntimeError):
            return None
        if message["type"] == "websocket.disconnect":
            return None
        text: str | None = message.get("text")
        if text is not None:
            return text
        data: bytes | None = message.get("bytes")
        return data if data is not None else b""

    async def write(self, data: bytes | str) -> None:
        if isinstance(data, str):
            await self.websocket.send_text(data)
        else:
            await self.websocket.send_bytes(data)

    async def close(self, code: int) -> None:
        if self.websocket.application_state is WebSocketState.CONNECTED:
            await self.websocket.close(code)


async def serve_twilio(websocket: WebSocket, new_handler: HandlerFactory, *, limits: CallLimits | None = None,
                       verify_start: Callable[[str, Mapping[str, str]], bool] | None = None) -> None:
    """Accept Twilio's websocket (`ws://HOST/media/twilio`) and run the call until it ends; with `verify_start`,
    a start message without the call's token is refused (close 1008)."""
    await websocket.accept()
    await run_call(TwilioCodec(verify_start=verify_start), StarletteSocket(websocket), new_handler, limits)


async def serve_softphone(websocket: WebSocket, new_handler: HandlerFactory, call_id: str | None = None, *,
                          limits: CallLimits | None = None) -> None:
    """Accept a browser softphone's websocket (`/phone/ws`) and run the call until it ends."""
    await websocket.accept()
    codec = SoftphoneCodec(call_id or f"phone-{uuid.uuid4().hex[:12]}")
    await run_call(codec, StarletteSocket(websocket), new_handler, limits)
