"""One SIP call as the endpoint keeps it (either direction): where its requests come from and go, its dialog,
its media sockets and codec, and what the application asked to hear of it (hold, REFER, NOTIFY)."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from typing import Any

from voice_gateway.transports.sip.client import Dialog
from voice_gateway.transports.sip.message import SipMessage
from voice_gateway.transports.sip.rtp import RtpCodec
from voice_gateway.transports.sip.rtp_socket import RtcpChannel, RtpSocket


@dataclass(frozen=True)
class Peer:
    """Where a request came from and how to answer it (a UDP address, or a TCP connection)."""

    host: str
    port: int
    send: Any  # Callable[[bytes], None]
    transport: str = "UDP"


@dataclass
class SipCall:
    invite: SipMessage
    source: Peer
    to_tag: str
    answer: bytes
    call_id: str  # the pipeline's id (the SIP Call-ID may hold any characters)
    codec: RtpCodec | None = None
    rtp: RtpSocket | None = None
    rtcp: RtcpChannel | None = None
    task: asyncio.Task[None] | None = None
    acked: bool = False
    ended: bool = False
    dialog: Dialog | None = None  # for our requests in the call (BYE, REFER)
    on_media: Any = None  # Callable[[str], None]: a re-INVITE's direction (sendonly/inactive = hold)
    on_notify: Any = None  # Callable[[str], None]: a REFER's progress ("SIP/2.0 200 OK")
    on_refer: Any = None  # Callable[[str], None]: the far end asks us to transfer (its Refer-To URI)
    bridged: bool = False  # its audio is relayed to a transfer target (a BYE closes the relay)
    bye_sent: bool = False  # the dialog ended (our BYE, or theirs)
    direction: str = "inbound"


def pipeline_call_id(sip_call_id: str) -> str:
    """The call's id in callpilot (records, recordings, logs): derived from the SIP Call-ID, which may hold any
    characters, so a phone can find its call in the records."""
    return "sip-" + hashlib.sha256(sip_call_id.encode()).hexdigest()[:32]
