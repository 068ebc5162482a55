"""Calls callpilot places (RFC 3261 §8.1, §17.1.1): the INVITE client transaction and the dialog it makes. Sans-I/O:
`OutgoingInvite` builds the INVITE, is given each response, and says what to send back (ACK, an authenticated
INVITE after a 401/407 challenge); `Dialog` builds the requests inside an established call (BYE, re-INVITE,
REFER) for calls in either direction.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from voice_gateway.transports.sip.message import SipMessage, tag_of, uri_of
from voice_gateway.transports.sip.register import answer_challenge
from voice_gateway.transports.sip.sdp import CODECS, PCMA, PCMU, TELEPHONE_EVENT, SdpError, SdpOffer, parse_offer

ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE, REFER, NOTIFY"
DTMF_PAYLOAD = 101


def branch() -> str:
    return "z9hG4bK" + secrets.token_hex(8)


def offer_sdp(*, address: str, port: int, session_id: int, direction: str = "sendrecv",
              rtcp_port: int | None = None) -> bytes:
    """Our offer for a call we place: mu-law, A-law, telephone-events, 20 ms packets."""
    lines = ["v=0", f"o=callpilot {session_id} {session_id} IN IP4 {address}", "s=callpilot",
             f"c=IN IP4 {address}", "t=0 0", f"m=audio {port} RTP/AVP {PCMU} {PCMA} {DTMF_PAYLOAD}",
             f"a=rtpmap:{PCMU} {CODECS[PCMU]}/8000", f"a=rtpmap:{PCMA} {CODECS[PCMA]}/8000",
             f"a=rtpmap:{DTMF_PAYLOAD} {TELEPHONE_EVENT}/8000", f"a=fmtp:{DTMF_PAYLOAD} 0-16", "a=ptime:20",
             *([f"a=rtcp:{rtcp_port}"] if rtcp_port else []), f"a={direction}"]
    return ("\r\n".join(lines) + "\r\n").encode()


def media_direction(body: bytes) -> str:
    """sendrecv / sendonly / recvonly / inactive from an SDP (a=...; c=0.0.0.0 is the old way to hold)."""
    text = body.decode("utf-8", "replace")
    for word in ("inactive", "sendonly", "recvonly"):
        if f"a={word}" in text:
            return word
    return "inactive" if "c=IN IP4 0.0.0.0" in text else "sendrecv"


@dataclass
class Dialog:
    """One established call as SIP sees it: our and their From/To values (with tags), where requests go."""

    call_id: str
    local: str  # our name-addr with our tag: From in our requests
    remote: str  # theirs with their tag: To in our requests
    target: str  # their Contact: the Request-URI of our requests
    via: str  # "SIP/2.0/UDP host:port"
    cseq: int = 1
    route: tuple[str, ...] = ()  # the proxies that Record-Routed the call (loose routing, RFC 3261 12.2.1.1)

    def request(self, method: str, *, body: bytes = b"", extra: list[tuple[str, str]] | None = None) -> SipMessage:
        self.cseq += 1
        headers = [("Via", f"{self.via};branch={branch()};rport"), ("Max-Forwards", "70"),
                   *(("Route", hop) for hop in self.route), ("From", self.local), ("To", self.remote),
                   ("Call-ID", self.call_id), ("CSeq", f"{self.cseq} {method}")]
        return SipMessage(method=method, uri=self.target, headers=headers + (extra or []), body=body)


@dataclass
class OutgoingInvite:
    """One INVITE we send until it is answered, refused or cancelled; `state` says where it stands:
    calling -> ringing -> answered | failed | cancelled."""

    target: str  # sip:4008001234@provider or sip:alice@10.0.0.5:5062
    caller: str  # our user part in From (the number the callee sees)
    local: str  # host:port we receive SIP on
    offer: bytes
    auth: tuple[str, str] | None = None  # (user, password) for a trunk that challenges
    transport: str = "UDP"
    extra: list[tuple[str, str]] = field(default_factory=list)
    call_id: str = field(default_factory=lambda: secrets.token_hex(12) + "@callpilot")
    state: str = "calling"
    status: int = 0
    reason: str = ""
    answer: SdpOffer | None = None
    answer_body: bytes = b""
    dialog: Dialog | None = None
    _from_tag: str = field(default_factory=lambda: secrets.token_hex(5))
    _cseq: int = 1
    _branch: str = field(default_factory=branch)
    _authorization: tuple[str, str] | None = None
    _challenged: bool = False
    _ack: SipMessage | None = None
    _cancelling: bool = False

    @property
    def via(self) -> str:
        return f"SIP/2.0/{self.transport} {self.local}"

    @property
    def from_value(self) -> str:
        return f"<sip:{self.caller}@{self.local.split(':')[0]}>;tag={self._from_tag}"

    def invite(self) -> SipMessage:
        """The INVITE (the same bytes on every retransmission of one transaction)."""
        headers = [("Via", f"{self.via};branch={self._branch};rport"), ("Max-Forwards", "70"),
                   ("From", self.from_value), ("To", f"<{self.target}>"), ("Call-ID", self.call_id),
                   ("CSeq", f"{self._cseq} INVITE"), ("Contact", f"<sip:callpilot@{self.local}>"), ("Allow", ALLOW),
                   ("User-Agent", "callpilot"), ("Content-Type", "application/sdp"), *self.extra]
        if self._authorization is not None:
            headers.append(self._authorization)
        return SipMessage(method="INVITE", uri=self.target, headers=headers, body=self.offer)

    def cancel(self) -> SipMessage | None:
        """CANCEL while it rings (nothing to send once answered or ended: hang up with the dialog's BYE)."""
        if self.state not in ("calling", "ringing"):
            return None
        self._cancelling = True
        headers = [("Via", f"{self.via};branch={self._branch};rport"), ("Max-Forwards", "70"),
                   ("From", self.from_value), ("To", f"<{self.target}>"), ("Call-ID", self.call_id),
                   ("CSeq", f"{self._cseq} CANCEL")]
        return SipMessage(method="CANCEL", uri=self.target, headers=headers)

    def on_response(self, reply: SipMessage) -> list[SipMessage]:
        """Take a response; returns the requests to send now (ACK, BYE, a new INVITE)."""
        number, method = reply.cseq
        if method != "INVITE" or number != self._cseq:
            return []  # the CANCEL's 200, or a stale answer to an earlier INVITE
        if reply.status < 200:
            if self.state == "calling" and reply.status >= 180:
                self.state = "ringing"
            return []
        if 200 <= reply.status < 300:
            return self._answered(reply)
        if self.state in ("answered", "failed", "cancelled"):
            return [self._error_ack(reply)]  # a retransmitted final answer
        ack = self._error_ack(reply)
        if reply.status in (401, 407) and self.auth is not None and not self._challenged and not self._cancelling:
            retry = self._authenticate(reply)
            if retry is not None:
                return [ack, retry]
        self.status, self.reason = reply.status, reply.reason
        self.state = "cancelled" if reply.status == 487 and self._cancelling else "failed"
        return [ack]

    def _answered(self, reply: SipMessage) -> list[SipMessage]:
        if self._ack is not None:  # the 200 again: our ACK got lost
            return [self._ack]
        self.status, self.reason = reply.status, reply.reason
        target = uri_of(reply.get("contact") or "") or self.target
        route = tuple(reversed(reply.get_all("record-route")))  # the caller's side reads the route set backwards
        self.dialog = Dialog(self.call_id, self.from_value, reply.get("to") or f"<{self.target}>", target, self.via,
                             self._cseq, route)
        ack = SipMessage(method="ACK", uri=target, headers=[
            ("Via", f"{self.via};branch={branch()};rport"), ("Max-Forwards", "70"), *(("Route", r) for r in route),
            ("From", self.from_value), ("To", reply.get("to") or ""), ("Call-ID", self.call_id),
            ("CSeq", f"{self._cseq} ACK")])
        self._ack = ack
        try:
            self.answer = parse_offer(reply.body)
        except SdpError as exc:  # answered without usable media: hang up at once
            self.state, self.reason = "failed", f"unusable SDP answer: {exc}"
            return [ack, self.dialog.request("BYE")]
        self.answer_body = reply.body
        if self._cancelling:  # the answer crossed our CANCEL: take it and hang up
            self.state = "cancelled"
            return [ack, self.dialog.request("BYE")]
        self.state = "answered"
        return [ack]

    def _error_ack(self, reply: SipMessage) -> SipMessage:
        """The ACK of a non-2xx answer belongs to the INVITE's transaction: the same branch and CSeq."""
        return SipMessage(method="ACK", uri=self.target, headers=[
            ("Via", f"{self.via};branch={self._branch};rport"), ("Max-Forwards", "70"), ("From", self.from_value),
            ("To", reply.get("to") or f"<{self.target}>"), ("Call-ID", self.call_id), ("CSeq", f"{self._cseq} ACK")])

    def _authenticate(self, reply: SipMessage) -> SipMessage | None:
        assert self.auth is not None
        user, password = self.auth
        authorization = answer_challenge(reply, username=user, password=password, method="INVITE", uri=self.target)
        if authorization is None:
            return None
        name = "Authorization" if reply.status == 401 else "Proxy-Authorization"
        self._authorization = (name, authorization)
        self._challenged, self._cseq, self._branch = True, self._cseq + 1, branch()
        return self.invite()


def answering_dialog(invite: SipMessage, to_tag: str, via: str) -> Dialog:
    """The dialog of a call we answered: our To (with our tag), their From, their Contact."""
    local = invite.get("to") or ""
    if ";tag=" not in local:
        local += f";tag={to_tag}"
    target = uri_of(invite.get("contact") or "") or invite.uri
    return Dialog(invite.call_id, local, invite.get("from") or "", target, via, cseq=0,
                  route=tuple(invite.get_all("record-route")))


__all__ = ["ALLOW", "Dialog", "OutgoingInvite", "answering_dialog", "media_direction", "offer_sdp", "tag_of"]
