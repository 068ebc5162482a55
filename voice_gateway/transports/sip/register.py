"""Registering to a SIP provider (a trunk that wants its customer registered): REGISTER with digest
authentication (RFC 3261 §10, RFC 2617 / 7616 MD5), refreshed before it expires. Sans-I/O: `Registration`
is given responses and the clock and says which request to send next."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field

from voice_gateway.transports.sip.message import SipMessage

RETRY_S = 30.0  # after a refusal or no answer
REFRESH_SHARE = 0.8  # re-register when this share of the granted time has passed


def md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def digest_response(*, username: str, password: str, realm: str, nonce: str, method: str, uri: str,
                    qop: str | None = None, nc: str = "00000001", cnonce: str = "") -> str:
    """RFC 2617 `response` (MD5; with qop=auth the nonce count and client nonce take part)."""
    ha1 = md5(f"{username}:{realm}:{password}")
    ha2 = md5(f"{method}:{uri}")
    if qop == "auth":
        return md5(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return md5(f"{ha1}:{nonce}:{ha2}")


def challenge_params(header: str) -> dict[str, str]:
    """`Digest realm="x", nonce="y", qop="auth,auth-int"` -> {realm: x, nonce: y, qop: auth,auth-int}."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "digest":
        return {}
    return {k.lower(): v.strip('"') for k, v in re.findall(r'(\w+)=("[^"]*"|[^,\s]+)', rest)}


def answer_challenge(reply: SipMessage, *, username: str, password: str, method: str, uri: str) -> str | None:
    """The Authorization (or Proxy-Authorization) value answering a 401/407's digest challenge; None when the
    reply carries no digest challenge."""
    header = reply.get("www-authenticate" if reply.status == 401 else "proxy-authenticate") or ""
    params = challenge_params(header)
    if "nonce" not in params:
        return None
    qop = "auth" if "auth" in params.get("qop", "").split(",") else None
    cnonce = secrets.token_hex(8)
    realm = params.get("realm", "")
    answer = digest_response(username=username, password=password, realm=realm, nonce=params["nonce"],
                             method=method, uri=uri, qop=qop, cnonce=cnonce)
    fields = [f'username="{username}"', f'realm="{realm}"', f'nonce="{params["nonce"]}"', f'uri="{uri}"',
              f'response="{answer}"', "algorithm=MD5"]
    if qop:
        fields += [f"qop={qop}", "nc=00000001", f'cnonce="{cnonce}"']
    if "opaque" in params:
        fields.append(f'opaque="{params["opaque"]}"')
    return "Digest " + ", ".join(fields)


@dataclass
class Registration:
    """One account at one registrar; `next_request(now)` is the REGISTER to send, if one is due."""

    registrar: str  # sip:sip.provider.example:5060
    user: str
    password: str
    contact: str  # <sip:user@our-address:port>
    expires: int = 300
    call_id: str = field(default_factory=lambda: secrets.token_hex(10) + "@callpilot")
    state: str = "new"  # new | registering | registered | failed
    detail: str = ""
    expires_at: float = 0.0
    _cseq: int = 0
    _due: float = 0.0
    _authorization: str | None = None
    _challenged: bool = False

    @property
    def domain(self) -> str:
        return self.registrar.split(":", 1)[1].split(";")[0].split(":")[0]

    def next_request(self, now: float, via: str) -> SipMessage | None:
        if now < self._due:
            return None
        self._cseq += 1
        self._due = now + RETRY_S  # unless an answer comes
        self.state = "registering" if self.state != "registered" else self.state
        aor = f"<sip:{self.user}@{self.domain}>"
        headers = [("Via", f"{via};branch=z9hG4bK{secrets.token_hex(8)};rport"), ("Max-Forwards", "70"),
                   ("From", f"{aor};tag={self.call_id[:8]}"), ("To", aor), ("Call-ID", self.call_id),
                   ("CSeq", f"{self._cseq} REGISTER"), ("Contact", self.contact), ("Expires", str(self.expires))]
        if self._authorization:
            headers.append(("Authorization", self._authorization))
        return SipMessage(method="REGISTER", uri=self.registrar.split(";")[0], headers=headers)

    def on_response(self, reply: SipMessage, now: float) -> None:
        if reply.status in (401, 407):
            if self._challenged:  # our answer to the challenge was refused: wrong user or password
                self.state, self.detail = "failed", f"{reply.status} {reply.reason}: check the user and password"
                self._due, self._challenged, self._authorization = now + RETRY_S, False, None
                return
            authorization = answer_challenge(reply, username=self.user, password=self.password, method="REGISTER",
                                             uri=self.registrar.split(";")[0])
            if authorization is None:
                self.state, self.detail = "failed", f"{reply.status} without a digest challenge"
                self._due = now + RETRY_S
                return
            self._authorization = authorization
            self._challenged, self._due = True, now  # send it again at once, answered
        elif 200 <= reply.status < 300:
            granted = _granted(reply, self.expires)
            self.state, self.detail, self._challenged = "registered", "", False
            self.expires_at = now + granted
            self._due = now + granted * REFRESH_SHARE
        elif reply.status >= 300:
            self.state, self.detail = "failed", f"{reply.status} {reply.reason}"
            self._due, self._challenged = now + RETRY_S, False


def _granted(reply: SipMessage, asked: int) -> int:
    match = re.search(r";\s*expires=(\d+)", reply.get("contact") or "")
    value = match.group(1) if match else (reply.get("expires") or "")
    return int(value) if value.isdigit() and int(value) > 0 else asked
