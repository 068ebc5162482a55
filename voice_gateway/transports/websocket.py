"""Serve Twilio Media Streams and the browser softphone over a Starlette/FastAPI `WebSocket`."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from websockets.exceptions import WebSocketException

from voice_gateway.transports.connection import CallGate, CallLimits, HandlerFactory, run_call
from voice_gateway.transports.softphone import SoftphoneCodec
from voice_gateway.transports.twilio import TwilioCodec

log = logging.getLogger(__name__)
# What a send raises once the other side is gone: Starlette's disconnect (uvicorn's ClientDisconnected), the
# websockets protocol closing under us (InvalidState), a send after the close (RuntimeError)
GONE: tuple[type[BaseException], ...] = (WebSocketDisconnect, WebSocketException, RuntimeError, OSError)
Redirect = Callable[[str, str], Awaitable[None]]  # (call SID, target): send a Twilio call on to the target


class StarletteSocket:
    """`SocketIO` over an accepted Starlette websocket: text messages stay str, binary stay bytes;
    `before_close` runs before the socket closes (a Twilio transfer must redirect the call while its stream is
    still open: once the stream ends, Twilio ends a call with no more TwiML)."""

    def __init__(self, websocket: WebSocket, before_close: Callable[[], Awaitable[None]] | None = None) -> None:
        self.websocket = websocket
        self.before_close = before_close

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
        try:
            if isinstance(data, str):
                await self.websocket.send_text(data)
            else:
                await self.websocket.send_bytes(data)
        except GONE as exc:  # the caller went away mid-call: the connection's "peer gone" (an OSError)
            raise ConnectionResetError(f"websocket closed: {exc!r}") from exc

    async def close(self, code: int) -> None:
        if self.before_close is not None:
            hook, self.before_close = self.before_close, None
            try:
                await hook()
            except Exception:  # the call ends here either way
                log.exception("before closing the media stream")
        if self.websocket.application_state is WebSocketState.CONNECTED:
            with contextlib.suppress(*GONE):  # already gone: nothing to close
                await self.websocket.close(code)


async def serve_twilio(websocket: WebSocket, new_handler: HandlerFactory, *, limits: CallLimits | None = None,
                       verify_start: Callable[[str, Mapping[str, str]], bool] | None = None,
                       redirect: Redirect | None = None, gate: CallGate | None = None) -> None:
    """Accept Twilio's websocket (`ws://HOST/media/twilio`) and run the call until it ends; with `verify_start`,
    a start message without the call's token is refused (close 1008). A call the bot transfers is handed to
    `redirect(call_sid, target)` (Twilio's REST API) before its stream closes; without it the call just ends."""
    await websocket.accept()
    codec = TwilioCodec(verify_start=verify_start)

    async def transfer() -> None:
        if codec.transfer_target and codec.call_sid:
            if redirect is None:
                log.warning("call %s: cannot transfer to %s: set twilio_account_sid for Twilio's REST API",
                            codec.call_sid, codec.transfer_target)
                return
            await redirect(codec.call_sid, codec.transfer_target)

    await run_call(codec, StarletteSocket(websocket, before_close=transfer), new_handler, limits, gate)


async def serve_softphone(websocket: WebSocket, new_handler: HandlerFactory, call_id: str | None = None, *,
                          limits: CallLimits | None = None, gate: CallGate | None = None) -> None:
    """Accept a browser softphone's websocket (`/phone/ws`) and run the call until it ends."""
    await websocket.accept()
    codec = SoftphoneCodec(call_id or f"phone-{uuid.uuid4().hex[:12]}")
    await run_call(codec, StarletteSocket(websocket), new_handler, limits, gate)
