"""SDP offer/answer (RFC 4566, 3264) for one audio stream: G.711 mu-law / A-law and RFC 4733 telephone-events."""

from __future__ import annotations

from dataclasses import dataclass

PCMU, PCMA = 0, 8  # static RTP payload types
CODECS = {PCMU: "PCMU", PCMA: "PCMA"}
TELEPHONE_EVENT = "telephone-event"


class SdpError(ValueError):
    """An offer we cannot answer (the SIP reply is 488 Not Acceptable Here)."""


@dataclass(frozen=True)
class SdpOffer:
    """Where the caller wants our audio and how: the first codec of theirs we speak, their DTMF payload type."""

    address: str
    port: int
    payload_type: int  # PCMU or PCMA
    dtmf_payload_type: int | None
    ptime_ms: int = 20
    rtcp_port: int | None = None  # a=rtcp (RFC 3605); None: the RTP port + 1


def parse_offer(body: bytes) -> SdpOffer:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SdpError("SDP is not text") from exc
    session_address = audio_address = ""
    port: int | None = None
    formats: list[int] = []
    rtpmap: dict[int, str] = {}
    ptime = 20
    rtcp: int | None = None
    in_audio = False
    for raw in text.splitlines():
        line = raw.strip()
        if len(line) < 2 or line[1] != "=":
            continue
        kind, value = line[0], line[2:]
        if kind == "m":
            parts = value.split()
            in_audio = bool(parts) and parts[0] == "audio" and port is None
            if in_audio:
                if len(parts) < 4 or not parts[1].isdigit() or not parts[2].startswith("RTP/"):
                    raise SdpError(f"bad media line m={value[:60]}")
                port = int(parts[1])
                formats = [int(f) for f in parts[3:] if f.isdigit()]
        elif kind == "c":
            parts = value.split()
            if len(parts) == 3 and parts[0] == "IN" and parts[1] in ("IP4", "IP6"):
                if in_audio:
                    audio_address = parts[2].split("/")[0]
                elif port is None:
                    session_address = parts[2].split("/")[0]
        elif kind == "a" and in_audio:
            name, _, rest = value.partition(":")
            if name == "rtpmap":
                number, _, encoding = rest.partition(" ")
                if number.isdigit():
                    rtpmap[int(number)] = encoding.strip()
            elif name == "ptime" and rest.strip().isdigit():
                ptime = int(rest.strip())
            elif name == "rtcp" and rest.split()[:1] and rest.split()[0].isdigit() and 0 < int(rest.split()[0]) < 65536:
                rtcp = int(rest.split()[0])
    if port is None:
        raise SdpError("no audio stream in the offer")
    if not 0 < port < 65536:
        raise SdpError(f"audio port {port} is out of range")
    address = audio_address or session_address
    if not address:
        raise SdpError("no connection address (c=) in the offer")
    chosen = next((f for f in formats if f in CODECS and rtpmap.get(f, CODECS[f]).upper().startswith(CODECS[f])),
                  None)
    if chosen is None:
        names = ", ".join(rtpmap.get(f, str(f)) for f in formats) or "none"
        raise SdpError(f"no codec we speak (PCMU, PCMA) among {names}")
    dtmf = next((f for f in formats if rtpmap.get(f, "").lower().startswith(TELEPHONE_EVENT + "/8000")), None)
    return SdpOffer(address, port, chosen, dtmf, ptime if ptime in (10, 20, 30, 40) else 20, rtcp)


def answer_sdp(offer: SdpOffer, *, address: str, port: int, session_id: int, rtcp_port: int | None = None) -> bytes:
    """Our answer: the offer's codec, telephone-events if offered, 20 ms packets."""
    formats = [str(offer.payload_type)]
    attributes = [f"a=rtpmap:{offer.payload_type} {CODECS[offer.payload_type]}/8000"]
    if offer.dtmf_payload_type is not None:
        formats.append(str(offer.dtmf_payload_type))
        attributes += [f"a=rtpmap:{offer.dtmf_payload_type} {TELEPHONE_EVENT}/8000",
                       f"a=fmtp:{offer.dtmf_payload_type} 0-16"]
    lines = ["v=0", f"o=callpilot {session_id} {session_id} IN IP4 {address}", "s=callpilot",
             f"c=IN IP4 {address}", "t=0 0", f"m=audio {port} RTP/AVP {' '.join(formats)}", *attributes,
             "a=ptime:20", *([f"a=rtcp:{rtcp_port}"] if rtcp_port else []), "a=sendrecv"]
    return ("\r\n".join(lines) + "\r\n").encode()
