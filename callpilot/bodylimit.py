"""An ASGI middleware that refuses HTTP request bodies over `max_body_bytes` with a 413 that says so.

A declared `Content-Length` over the limit is refused before the body is read; a chunked body is counted as it
arrives and refused once it passes the limit, so no route ever holds more than the limit in memory.
"""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def too_large(max_bytes: int) -> str:
    return f"request body too large: at most {max_bytes} bytes (setting max_body_bytes)"


class BodyTooLarge(HTTPException):
    """The request body passed the limit while it was being read: a 413 wherever the route reads it."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, too_large(max_bytes))


class MaxBodySize:
    """Wraps an ASGI app; websockets and lifespan pass through untouched."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"detail": too_large(self.max_bytes)}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
