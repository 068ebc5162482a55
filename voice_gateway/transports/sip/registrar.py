"""callpilot as the registrar of its agents' phones (RFC 3261 §10.3) with digest authentication (RFC 2617,
MD5, qop=auth). Sans-I/O: `Registrar.handle(REGISTER, source)` returns the response and, when a phone came or
went, which user changed; the server sends the response. Passwords are never kept: the directory holds
HA1 = MD5(user:realm:password), which is all a digest check needs.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from voice_gateway.transports.sip.message import SipMessage, response, uri_of, uri_user
from voice_gateway.transports.sip.register import challenge_params, md5

REALM = "callpilot"
NONCE_TTL_S = 300.0
MIN_EXPIRES, MAX_EXPIRES, DEFAULT_EXPIRES = 60, 3600, 600


def ha1(user: str, password: str, realm: str = REALM) -> str:
    """What the directory stores for a phone's password."""
    return md5(f"{user}:{realm}:{password}")


@dataclass(frozen=True)
class Binding:
    """Where a registered phone is reached: its Contact, and the address its REGISTER came from (behind NAT
    the Contact's address is private; requests go to the source, as `rport` would)."""

    user: str
    contact: str
    host: str
    port: int
    transport: str
    expires_at: float


class Registrar:
    """Bindings by user; `lookup(user)` is the HA1 of a phone user (None: no such phone)."""

    def __init__(self, lookup: Callable[[str], str | None], *, realm: str = REALM,
                 clock: Callable[[], float] = time.time) -> None:
        self.lookup, self.realm, self.clock = lookup, realm, clock
        self._secret = secrets.token_bytes(16)
        self.bindings: dict[str, Binding] = {}
        self.refused = 0

    def binding(self, user: str) -> Binding | None:
        found = self.bindings.get(user)
        if found is not None and found.expires_at <= self.clock():
            del self.bindings[user]
            return None
        return found

    def handle(self, request: SipMessage, host: str, port: int, transport: str = "UDP"
               ) -> tuple[SipMessage, str | None]:
        """The response to a REGISTER and the user whose binding changed (None: no change)."""
        tag = secrets.token_hex(5)
        user = uri_user(request.get("to") or "")
        known = self.lookup(user) if user else None
        credentials = challenge_params(request.get("authorization") or "")
        if not credentials:
            return self._challenge(request, tag, stale=False), None
        if known is None or credentials.get("username") != user:
            self.refused += 1
            return response(request, 403, to_tag=tag), None
        fresh = self._nonce_fresh(credentials.get("nonce", ""))
        if fresh is None:
            return self._challenge(request, tag, stale=False), None
        if not _digest_ok(credentials, known, request.method):
            self.refused += 1
            return response(request, 403, to_tag=tag), None
        if not fresh:
            return self._challenge(request, tag, stale=True), None
        contact = request.get("contact") or ""
        if not contact:  # a query: what is bound
            return self._ok(request, tag, user), None
        expires = _expires(request)
        if contact.strip() == "*" or expires == 0:
            return self._ok(request, tag, None), user if self.bindings.pop(user, None) is not None else None
        if expires < MIN_EXPIRES:
            return response(request, 423, to_tag=tag, extra=[("Min-Expires", str(MIN_EXPIRES))]), None
        expires = min(expires, MAX_EXPIRES)
        new = user not in self.bindings
        self.bindings[user] = Binding(user, uri_of(contact), host, port, transport, self.clock() + expires)
        return self._ok(request, tag, user, expires), user if new else None

    def expired(self) -> list[str]:
        """Drop bindings whose time ran out; returns their users (their phones are gone)."""
        now = self.clock()
        gone = [user for user, b in self.bindings.items() if b.expires_at <= now]
        for user in gone:
            del self.bindings[user]
        return gone

    def _ok(self, request: SipMessage, tag: str, user: str | None, expires: int | None = None) -> SipMessage:
        extra = [("Date", time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime()))]
        binding = self.bindings.get(user) if user else None
        if binding is not None:
            left = expires if expires is not None else max(0, int(binding.expires_at - self.clock()))
            extra.append(("Contact", f"<{binding.contact}>;expires={left}"))
        return response(request, 200, to_tag=tag, extra=extra)

    def _challenge(self, request: SipMessage, tag: str, *, stale: bool) -> SipMessage:
        value = f'Digest realm="{self.realm}", nonce="{self._nonce()}", qop="auth", algorithm=MD5'
        if stale:
            value += ", stale=true"
        return response(request, 401, to_tag=tag, extra=[("WWW-Authenticate", value)])

    def _nonce(self) -> str:
        stamp = f"{self.clock():.0f}"
        mac = hmac.new(self._secret, stamp.encode(), hashlib.sha256).hexdigest()[:24]
        return f"{stamp}.{mac}"

    def _nonce_fresh(self, nonce: str) -> bool | None:
        """True: ours and fresh; False: ours but old (stale); None: not ours."""
        stamp, _, mac = nonce.partition(".")
        good = hmac.new(self._secret, stamp.encode(), hashlib.sha256).hexdigest()[:24]
        if not stamp.isdigit() or not hmac.compare_digest(mac, good):
            return None
        return self.clock() - int(stamp) <= NONCE_TTL_S


def _digest_ok(credentials: dict[str, str], known_ha1: str, method: str) -> bool:
    ha2 = md5(f"{method}:{credentials.get('uri', '')}")
    nonce = credentials.get("nonce", "")
    if credentials.get("qop") == "auth":
        expected = md5(f"{known_ha1}:{nonce}:{credentials.get('nc', '')}:{credentials.get('cnonce', '')}:auth:{ha2}")
    else:
        expected = md5(f"{known_ha1}:{nonce}:{ha2}")
    return hmac.compare_digest(expected, credentials.get("response", ""))


def _expires(request: SipMessage) -> int:
    match = re.search(r";\s*expires=(\d+)", request.get("contact") or "")
    value = match.group(1) if match else (request.get("expires") or "")
    return int(value) if value.isdigit() else DEFAULT_EXPIRES
