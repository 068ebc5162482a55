"""Sans-I/O codec for the browser softphone (our own protocol over the websocket at /phone/ws).

Text messages are JSON control messages with a `type`; binary messages are PCM16 little-endian mono
audio at the rate the browser declared in `start`. The browser sends `start`, `dtmf`, `mark` (a mark
we sent has played), `hangup` and audio; we send audio, `mark`, `clear`, `hangup`, `transcript`, `status`.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from voice_gateway.events import (
    DTMF_DIGITS,
    AudioIn,
    CallStarted,
    DisplayStatus,
    DisplayTranscript,
    Dtmf,
    ErrorKind,
    MarkPlayed,
)
from voice_gateway.transports.base import MAX_MESSAGE_BYTES, CodecBase, LocalProtocolError

SAMPLE_RATES = (8000, 16000, 24000, 48000)  # rates StreamResampler converts to and from 8/16 kHz cheaply


class SoftphoneState(StrEnum):
    NEW = "new"
    ACTIVE = "active"
    ENDED = "ended"


# (state, message type) -> next state; "audio" stands for a binary message.
TRANSITIONS: dict[tuple[SoftphoneState, str], SoftphoneState] = {
    (SoftphoneState.NEW, "start"): SoftphoneState.ACTIVE,
    (SoftphoneState.NEW, "hangup"): SoftphoneState.ENDED,
    (SoftphoneState.ACTIVE, "audio"): SoftphoneState.ACTIVE,
    (SoftphoneState.ACTIVE, "dtmf"): SoftphoneState.ACTIVE,
    (SoftphoneState.ACTIVE, "mark"): SoftphoneState.ACTIVE,
    (SoftphoneState.ACTIVE, "hangup"): SoftphoneState.ENDED,
}
TYPES = frozenset(kind for _, kind in TRANSITIONS)


class SoftphoneCodec(CodecBase):
    """One browser call; `call_id` comes from the server (the browser does not name its calls)."""

    transport = "softphone"

    def __init__(self, call_id: str, *, max_message_bytes: int = MAX_MESSAGE_BYTES) -> None:
        super().__init__()
        self.call_id = call_id
        self.max_message_bytes = max_message_bytes
        self.state = SoftphoneState.NEW
        self._sample_rate = 0

    @property
    def sample_rate(self) -> int:
        """The rate the browser declared; 0 before `start`."""
        return self._sample_rate

    def receive_data(self, data: bytes | str) -> None:
        """Parse one websocket message: text is JSON control, binary is audio."""
        if self._failed:
            return
        size = len(data) if isinstance(data, bytes) or data.isascii() else len(data.encode())
        if size > self.max_message_bytes:
            self._error(ErrorKind.TOO_LARGE, f"message of {size} bytes exceeds {self.max_message_bytes}", fatal=True)
            return
        if isinstance(data, bytes):
            if self._allowed("audio"):
                self._on_audio(data)
            return
        try:
            message = json.loads(data)
        except (ValueError, RecursionError) as exc:
            self._error(ErrorKind.MALFORMED, f"not JSON: {exc}")
            return
        if not isinstance(message, dict) or not isinstance(message.get("type"), str) or message["type"] == "audio":
            self._error(ErrorKind.MALFORMED, "expected a JSON object with a string 'type'")
            return
        kind = message["type"]
        if kind not in TYPES:
            self._error(ErrorKind.UNKNOWN_EVENT, f"unknown message type {kind[:40]!r}")
        elif self._allowed(kind):
            getattr(self, f"_on_{kind}")(message)

    def _allowed(self, kind: str) -> bool:
        next_state = TRANSITIONS.get((self.state, kind))
        if next_state is None:
            where = {SoftphoneState.NEW: "before 'start'", SoftphoneState.ENDED: "after 'hangup'"}.get(self.state, "")
            self._error(ErrorKind.OUT_OF_ORDER, f"'{kind}' {where or 'twice'}")
            return False
        self.state = next_state
        return True

    def _on_start(self, message: dict[str, Any]) -> None:
        rate, caller = message.get("sampleRate"), message.get("caller", "")
        if not isinstance(rate, int) or rate not in SAMPLE_RATES:
            self._error(ErrorKind.UNSUPPORTED, f"sampleRate {rate!r}; expected one of {SAMPLE_RATES}", fatal=True)
            return
        if not isinstance(caller, str):
            self._error(ErrorKind.MALFORMED, "'caller' must be a string", fatal=True)
            return
        self._sample_rate = rate
        self._start()
        self._events.append(CallStarted(self.call_id, self.transport, rate, caller=caller, stream_id=self.call_id))

    def _on_audio(self, data: bytes) -> None:
        if len(data) % 2:
            self._error(ErrorKind.BAD_PAYLOAD, f"PCM16 audio needs an even number of bytes, got {len(data)}")
        elif data:
            self._events.append(AudioIn(data, self._sample_rate))

    def _on_dtmf(self, message: dict[str, Any]) -> None:
        digit = message.get("digit")
        if isinstance(digit, str) and digit in DTMF_DIGITS:
            self._events.append(Dtmf(digit))
        else:
            self._error(ErrorKind.BAD_PAYLOAD, f"DTMF digit {str(digit)[:10]!r} is not one of 0-9 * # A-D")

    def _on_mark(self, message: dict[str, Any]) -> None:
        name = message.get("name")
        if isinstance(name, str):
            self._events.append(MarkPlayed(name))
        else:
            self._error(ErrorKind.MALFORMED, "'mark' needs a string 'name'")

    def _on_hangup(self, message: dict[str, Any]) -> None:
        self._end("hangup")

    # Outbound.

    def _send_json(self, message: dict[str, Any]) -> None:
        if not self.close_expected:
            self._output.append(json.dumps(message))

    def send_audio(self, pcm: bytes) -> None:
        """Queue PCM16 audio at the browser's declared rate as one binary message."""
        self._check_pcm(pcm)
        if not self._sample_rate:
            raise LocalProtocolError("cannot send audio before the browser's 'start'")
        if pcm and not self.close_expected:
            self._output.append(pcm)

    def send_mark(self, name: str) -> None:
        self._send_json({"type": "mark", "name": name})

    def send_clear(self) -> None:
        self._send_json({"type": "clear"})

    def send_hangup(self, reason: str = "local_hangup") -> None:
        self._send_json({"type": "hangup", "reason": reason})
        self._end(reason)
        self._hung_up = True

    def _display(self, command: DisplayTranscript | DisplayStatus) -> None:
        if isinstance(command, DisplayTranscript):
            self._send_json(
                {"type": "transcript", "speaker": command.speaker, "text": command.text, "final": command.final}
            )
        else:
            self._send_json({"type": "status", "status": command.status, "detail": command.detail})

    def send_transcript(self, speaker: str, text: str, *, final: bool = True) -> None:
        self._display(DisplayTranscript(speaker, text, final))

    def send_status(self, status: str, detail: str = "") -> None:
        self._display(DisplayStatus(status, detail))
