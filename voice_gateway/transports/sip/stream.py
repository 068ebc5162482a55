"""SIP messages from a TCP stream: framed by Content-Length (RFC 3261 §18.3), keep-alive CRLFs skipped."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from voice_gateway.transports.sip.message import MAX_BYTES, SipMessage, SipParseError, parse_message


async def read_stream(reader: asyncio.StreamReader) -> AsyncIterator[SipMessage]:
    """Each message on the connection; ends at EOF, or at a message that cannot be framed or is too large
    (the caller closes the connection then). Unparseable but framed messages are skipped."""
    buffer = b""
    try:
        while chunk := await reader.read(8192):
            buffer += chunk
            while True:
                buffer = buffer.lstrip(b"\r\n")
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    break
                length = content_length(buffer[:end])
                if length is None or end + 4 + length > MAX_BYTES:
                    return
                if len(buffer) < end + 4 + length:
                    break
                data, buffer = buffer[: end + 4 + length], buffer[end + 4 + length :]
                with contextlib.suppress(SipParseError):
                    yield parse_message(data)
            if len(buffer) > MAX_BYTES:
                return
    except (ConnectionError, asyncio.IncompleteReadError):
        return


def content_length(head: bytes) -> int | None:
    """The Content-Length of a message head (required on TCP), or None."""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() in (b"content-length", b"l"):
            return int(value.strip()) if value.strip().isdigit() else None
    return None
