"""SIP messages (RFC 3261) as values: parse a datagram, build requests and responses. No sockets.

Header names are case-insensitive and have compact forms (`v` = Via, `f` = From ...); a message has at most
`MAX_BYTES` and a body of exactly Content-Length bytes. Anything else is a `SipParseError` with a reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_BYTES = 16 * 1024
COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact", "l": "content-length",
           "c": "content-type", "k": "supported", "s": "subject", "e": "content-encoding"}
METHODS = frozenset({"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "INFO", "UPDATE", "PRACK",
                     "REFER", "NOTIFY", "SUBSCRIBE", "MESSAGE"})
REASONS = {100: "Trying", 180: "Ringing", 200: "OK", 202: "Accepted", 302: "Moved Temporarily", 400: "Bad Request",
           401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
           408: "Request Timeout", 423: "Interval Too Brief", 480: "Temporarily Unavailable",
           481: "Call/Transaction Does Not Exist", 486: "Busy Here", 487: "Request Terminated",
           488: "Not Acceptable Here", 500: "Server Internal Error", 501: "Not Implemented", 503: "Service Unavailable"}
_TOKEN = re.compile(r"^[A-Za-z0-9.!%*_+`'~-]+$")
_URI_USER = re.compile(r"<?\s*(?:sips?|tel):([^@;>\s]+)")


class SipParseError(ValueError):
    """A datagram that is not a SIP message we can answer."""


@dataclass
class SipMessage:
    """A request (`method`, `uri`) or a response (`status`, `reason`); headers keep their order and repeats."""

    method: str = ""
    uri: str = ""
    status: int = 0
    reason: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @property
    def is_request(self) -> bool:
        return bool(self.method)

    def get(self, name: str) -> str | None:
        """The first value of a header (any case, compact form allowed)."""
        wanted = _canonical(name)
        return next((value for key, value in self.headers if _canonical(key) == wanted), None)

    def get_all(self, name: str) -> list[str]:
        wanted = _canonical(name)
        return [value for key, value in self.headers if _canonical(key) == wanted]

    @property
    def call_id(self) -> str:
        return self.get("call-id") or ""

    @property
    def cseq(self) -> tuple[int, str]:
        number, _, method = (self.get("cseq") or "").partition(" ")
        return (int(number) if number.isdigit() else 0), method.strip().upper()

    def to_bytes(self) -> bytes:
        start = f"{self.method} {self.uri} SIP/2.0" if self.is_request else f"SIP/2.0 {self.status} {self.reason}"
        lines = [start, *(f"{key}: {value}" for key, value in self.headers if key.lower() != "content-length")]
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


def _canonical(name: str) -> str:
    low = name.strip().lower()
    return COMPACT.get(low, low)


def parse_message(data: bytes) -> SipMessage:
    """One SIP message from a datagram (keep-alive CRLFs are a `SipParseError` the server ignores)."""
    if len(data) > MAX_BYTES:
        raise SipParseError(f"message of {len(data)} bytes exceeds {MAX_BYTES}")
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")
    if not head.strip():
        raise SipParseError("empty message")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SipParseError("header bytes are not UTF-8") from exc
    lines = text.replace("\r\n", "\n").split("\n")
    message = _start_line(lines[0].strip())
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t" and message.headers:  # a folded header continues the previous one
            key, value = message.headers[-1]
            message.headers[-1] = (key, f"{value} {line.strip()}")
            continue
        key, colon, value = line.partition(":")
        if not colon or not _TOKEN.match(key.strip()):
            raise SipParseError(f"bad header line {line[:60]!r}")
        message.headers.append((key.strip(), value.strip()))
    for required in ("via", "from", "to", "call-id", "cseq"):
        if message.get(required) is None:
            raise SipParseError(f"no {required} header")
    length = message.get("content-length")
    if length is not None:
        if not length.isdigit() or int(length) > len(body):
            raise SipParseError(f"Content-Length {length!r} does not match a body of {len(body)} bytes")
        body = body[: int(length)]
    message.body = body
    return message


def _start_line(line: str) -> SipMessage:
    parts = line.split(" ", 2)
    if len(parts) == 3 and parts[0] == "SIP/2.0":
        if not (parts[1].isdigit() and len(parts[1]) == 3):
            raise SipParseError(f"bad status line {line[:60]!r}")
        return SipMessage(status=int(parts[1]), reason=parts[2])
    if len(parts) == 3 and parts[2] == "SIP/2.0" and _TOKEN.match(parts[0]) and parts[1]:
        return SipMessage(method=parts[0].upper(), uri=parts[1])
    raise SipParseError(f"bad start line {line[:60]!r}")


def response(request: SipMessage, status: int, *, to_tag: str | None = None, body: bytes = b"",
             extra: list[tuple[str, str]] | None = None) -> SipMessage:
    """A response to `request`: its Via, From, Call-ID and CSeq; To with our tag when we give one."""
    to = request.get("to") or ""
    if to_tag and ";tag=" not in to:
        to = f"{to};tag={to_tag}"
    headers = [("Via", via) for via in request.get_all("via")]
    if request.method == "INVITE" and 100 < status < 300:  # the dialog's route set goes back (RFC 3261 12.1.1)
        headers += [("Record-Route", route) for route in request.get_all("record-route")]
    headers += [("From", request.get("from") or ""), ("To", to), ("Call-ID", request.call_id),
                ("CSeq", request.get("cseq") or "")]
    return SipMessage(status=status, reason=REASONS.get(status, "Unknown"), headers=headers + (extra or []),
                      body=body)


def uri_user(value: str) -> str:
    """The user part of a From / To / P-Asserted-Identity / Request-URI: `"Ann" <sip:+1617...@host>` -> +1617..."""
    match = _URI_USER.search(value)
    return match.group(1) if match else ""


def tag_of(value: str) -> str:
    match = re.search(r";\s*tag=([^;>\s]+)", value)
    return match.group(1) if match else ""


def uri_of(value: str) -> str:
    """The URI inside a name-addr (`"Ann" <sip:ann@h:5060;transport=udp>;tag=1` -> sip:ann@h:5060;transport=udp)."""
    match = re.search(r"<([^>]+)>", value)
    return match.group(1) if match else value.split(";", 1)[0].strip()
