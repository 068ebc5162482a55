"""What flows through a call: typed, frozen events from the caller and commands back to them.

Transports turn wire bytes into *inbound* events (`CallStarted`, `AudioIn`, `Dtmf`, `MarkPlayed`,
`CallEnded`, `TransportError`) and *outbound* commands (`AudioOut`, `Mark`, `Clear`, `HangUp`,
`DisplayTranscript`, `DisplayStatus`) into wire bytes. Audio is always PCM16 little-endian mono.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

DTMF_DIGITS = frozenset("0123456789*#ABCD")


class ErrorKind(StrEnum):
    """Why a transport rejected some input; the websocket adapters map it to a close code."""

    MALFORMED = "malformed"  # not JSON / not UTF-8 / missing or mistyped fields
    UNKNOWN_EVENT = "unknown_event"  # an event, message type or frame kind we do not know
    OUT_OF_ORDER = "out_of_order"  # media before start, a second start, data after the end
    BAD_PAYLOAD = "bad_payload"  # bad base64, odd PCM length, bad DTMF digit, wrong frame length
    TOO_LARGE = "too_large"  # a message or frame over the transport's limit
    UNSUPPORTED = "unsupported"  # a media format or sample rate we cannot handle
    PEER_ERROR = "peer_error"  # the other side reported an error (AudioSocket 0xff)
    FORBIDDEN = "forbidden"  # a start message without the per-call token the server handed out


# Inbound: from the caller's side.


@dataclass(frozen=True)
class CallStarted:
    """A call is connected: who is calling and at what sample rate its audio flows."""

    call_id: str
    transport: str  # "twilio" | "audiosocket" | "softphone"
    sample_rate: int
    caller: str = ""
    called: str = ""
    stream_id: str = ""
    parameters: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AudioIn:
    """Caller audio: PCM16 little-endian mono at `sample_rate`."""

    pcm: bytes
    sample_rate: int
    timestamp_ms: int | None = None  # position in the stream when the transport says (Twilio)

    @property
    def duration_ms(self) -> float:
        return len(self.pcm) / 2 / self.sample_rate * 1000


@dataclass(frozen=True)
class Dtmf:
    """The caller pressed a key (0-9, *, #, A-D) as signalled by the transport."""

    digit: str


@dataclass(frozen=True)
class MarkPlayed:
    """The audio sent before the mark `name` has been played to the caller (or was cleared)."""

    name: str


@dataclass(frozen=True)
class CallEnded:
    """The call is over: the caller hung up, the stream stopped or the connection broke."""

    reason: str  # "stop" | "hangup" | "disconnected" | "protocol_error" | "local_hangup" | ...


@dataclass(frozen=True)
class TransportError:
    """Input the transport rejected; `fatal` means the connection must now be closed."""

    kind: ErrorKind
    message: str
    fatal: bool = False

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}" + (" (closing)" if self.fatal else "")


# Outbound: commands to the caller's side.


@dataclass(frozen=True)
class AudioOut:
    """Bot audio to play: PCM16 little-endian mono at `sample_rate` (must match the transport's)."""

    pcm: bytes
    sample_rate: int


@dataclass(frozen=True)
class Mark:
    """Ask to be told (`MarkPlayed`) when the audio sent so far has been played."""

    name: str


@dataclass(frozen=True)
class Clear:
    """Drop the bot audio queued for playback (barge-in)."""


@dataclass(frozen=True)
class HangUp:
    """End the call from our side."""

    reason: str = "local_hangup"


@dataclass(frozen=True)
class Transfer:
    """Send the caller on to `target` (a number or a sip: address) and leave the call: the transport does it
    (SIP: REFER, else callpilot bridges the caller to the target; Twilio: the call is redirected to a <Dial>)."""

    target: str


@dataclass(frozen=True)
class DisplayTranscript:
    """A line of transcript for screens that show one (the browser softphone)."""

    speaker: str  # "caller" | "bot" | "agent"
    text: str
    final: bool = True


@dataclass(frozen=True)
class DisplayStatus:
    """A status line for screens that show one (the browser softphone)."""

    status: str  # "connected" | "listening" | "speaking" | "handoff" | ...
    detail: str = ""


# In the pipeline.


@dataclass(frozen=True)
class Interruption:
    """The caller barged in: queued bot audio and utterances are dropped (never control events)."""

    reason: str = "barge_in"


InboundEvent = CallStarted | AudioIn | Dtmf | MarkPlayed | CallEnded | TransportError
OutboundEvent = AudioOut | Mark | Clear | HangUp | Transfer | DisplayTranscript | DisplayStatus
