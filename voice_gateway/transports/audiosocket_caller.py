"""The caller's number carried inside an AudioSocket call's UUID.

Asterisk's `AudioSocket(uuid,host:port)` sends nothing about a call but the UUID the dialplan chose (frame 0x01,
then audio, DTMF and hang-up; the protocol has no other frame kinds). So the dialplan writes the number into the
UUID with stock dialplan functions (FILTER, SHA1, substrings), and nothing else has to reach callpilot first:

    HHHHHHHH-HHHH-ca11-TTTT-TTTTTTTTTTTT

`H`: the first 12 hex digits of SHA1(${UNIQUEID}), unique per call; `ca11`: the mark of this layout (a random
UUID has its version digit there, never "ca11"); `T`: 16 characters, "f" padding, then "a" for a leading "+",
then the number's last 15 decimal digits (E.164 has at most 15). All "f": the number was withheld.

    exten => 400,1,Answer()
     same => n,Set(NUM=${FILTER(0-9,${CALLERID(num)})})
     same => n,Set(PLUS=${IF($["${CALLERID(num):0:1}" = "+"]?a:)})
     same => n,Set(TAIL=ffffffffffffffff${PLUS}${NUM:-15})
     same => n,Set(TAIL=${TAIL:-16})
     same => n,Set(KEY=${SHA1(${UNIQUEID})})
     same => n,AudioSocket(${KEY:0:8}-${KEY:8:4}-ca11-${TAIL:0:4}-${TAIL:4:12},127.0.0.1:9092)
     same => n,Hangup()
"""

from __future__ import annotations

import hashlib
import re
import uuid

MARK = "ca11"
_TAIL = re.compile(r"f*(?P<plus>a?)(?P<digits>\d{0,15})")


def caller_uuid(caller: str, unique_id: str) -> uuid.UUID:
    """The UUID the documented dialplan builds for a caller id and an Asterisk ${UNIQUEID}."""
    digits = re.sub(r"\D", "", caller)[-15:]
    tail = ("f" * 16 + ("a" if caller.startswith("+") else "") + digits)[-16:]
    key = hashlib.sha1(unique_id.encode()).hexdigest()
    return uuid.UUID(f"{key[:8]}-{key[8:12]}-{MARK}-{tail[:4]}-{tail[4:]}")


def caller_from_uuid(call_uuid: uuid.UUID) -> str:
    """The caller's number in a UUID built by the dialplan ("+16175550142", "02079460958"); "" when it carries
    none (withheld, or a UUID from a dialplan that does not use this layout)."""
    groups = str(call_uuid).split("-")
    if groups[2] != MARK:
        return ""
    match = _TAIL.fullmatch(groups[3] + groups[4])
    if match is None or not match["digits"]:
        return ""
    return ("+" if match["plus"] else "") + match["digits"]
