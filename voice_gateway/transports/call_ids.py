"""Call ids from the outside world, checked before anything is named after them.

A call id becomes a file name (recordings, voicemail), a Redis key and a records row, and Twilio's `callSid`
comes from the client's JSON: an absolute or `../` id would otherwise choose where a WAV is written. Each
transport's ids have a known shape; `file_for_call` also checks that the path it builds stays in its folder.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

TWILIO_CALL_SID = re.compile(r"^CA[0-9a-f]{32}$")
OUR_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,79}$")  # softphone, `callpilot call`, SIP, tests: no dots or slashes


class BadCallId(ValueError):
    """A call id that is not of its transport's shape."""


def check_call_id(transport: str, call_id: str) -> str:
    """`call_id` if it has the shape its transport gives ids, else BadCallId saying what was expected."""
    if transport == "twilio":
        if TWILIO_CALL_SID.match(call_id):
            return call_id
        raise BadCallId(f"callSid {call_id[:48]!r} is not a Twilio call SID (CA + 32 hex digits)")
    if transport == "audiosocket":
        try:
            if str(uuid.UUID(call_id)) == call_id:
                return call_id
        except ValueError:
            pass
        raise BadCallId(f"call id {call_id[:48]!r} is not an AudioSocket UUID")
    if OUR_ID.match(call_id):
        return call_id
    raise BadCallId(f"call id {call_id[:48]!r}: letters, digits, '-' and '_' only (at most 80)")


def file_for_call(folder: Path, call_id: str, *, prefix: str = "", suffix: str = ".wav") -> Path:
    """`folder/<prefix><call_id><suffix>`, resolved, and refused unless it is inside `folder`."""
    if not OUR_ID.match(call_id):
        raise BadCallId(f"call id {call_id[:48]!r} does not name a file inside {folder}")
    root = folder.resolve()
    path = (root / f"{prefix}{call_id}{suffix}").resolve()
    if path.parent != root:
        raise BadCallId(f"call id {call_id[:48]!r} does not name a file inside {root}")
    return path
