"""Sans-I/O codec for Twilio Media Streams (bidirectional, `<Connect><Stream>`), our server's side.

Twilio sends JSON text messages: `connected`, `start`, `media` (base64 mu-law, 8 kHz, 20 ms),
`dtmf`, `mark` (a mark we sent has played) and `stop`. We send `media`, `mark` and `clear`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any

from voice_gateway.audio.g711 import ulaw_decode, ulaw_encode
from voice_gateway.events import DTMF_DIGITS, AudioIn, CallStarted, Dtmf, ErrorKind, MarkPlayed
from voice_gateway.transports.base import MAX_MESSAGE_BYTES, CodecBase, LocalProtocolError
from voice_gateway.transports.call_ids import BadCallId, check_call_id

SAMPLE_RATE = 8000
MEDIA_FORMAT = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}


class TwilioState(StrEnum):
    NEW = "new"
    CONNECTED = "connected"
    STREAMING = "streaming"
    STOPPED = "stopped"


# (state, inbound event) -> next state; any other pair is out of order.
TRANSITIONS: dict[tuple[TwilioState, str], TwilioState] = {
    (TwilioState.NEW, "connected"): TwilioState.CONNECTED,
    (TwilioState.NEW, "start"): TwilioState.STREAMING,  # `connected` is informative; tolerate its absence
    (TwilioState.CONNECTED, "start"): TwilioState.STREAMING,
    (TwilioState.STREAMING, "media"): TwilioState.STREAMING,
    (TwilioState.STREAMING, "dtmf"): TwilioState.STREAMING,
    (TwilioState.STREAMING, "mark"): TwilioState.STREAMING,
    (TwilioState.STREAMING, "stop"): TwilioState.STOPPED,
}
EVENTS = frozenset(event for _, event in TRANSITIONS)


class _Malformed(Exception):
    """A message lacks a field or has one of the wrong type."""


def _field(obj: dict[str, Any], key: str, kind: type, where: str = "") -> Any:
    value = obj.get(key)
    if not isinstance(value, kind):
        name = f"{where}.{key}" if where else key
        raise _Malformed(f"'{name}' must be a {kind.__name__}, got {type(value).__name__}")
    return value


def _counter(value: object) -> int | None:
    """Twilio sends counters as strings; None when absent or not a number."""
    return int(value) if isinstance(value, str) and value.isdecimal() else None


class TwilioCodec(CodecBase):
    """One Twilio Media Stream: Twilio's JSON messages in, `AudioIn`/`Dtmf`/... events out."""

    transport = "twilio"

    def __init__(self, *, max_message_bytes: int = MAX_MESSAGE_BYTES,
                 verify_start: Callable[[str, Mapping[str, str]], bool] | None = None) -> None:
        super().__init__()
        self.verify_start = verify_start  # (callSid, customParameters) -> the stream's token is right
        self.max_message_bytes = max_message_bytes
        self.state = TwilioState.NEW
        self.stream_sid = ""
        self.call_sid = ""

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    def receive_data(self, data: bytes | str) -> None:
        """Parse one websocket message from Twilio."""
        if self._failed:
            return
        size = len(data) if isinstance(data, bytes) or data.isascii() else len(data.encode())
        if size > self.max_message_bytes:
            self._error(ErrorKind.TOO_LARGE, f"message of {size} bytes exceeds {self.max_message_bytes}", fatal=True)
            return
        try:
            message = json.loads(data)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            self._error(ErrorKind.MALFORMED, f"not JSON: {exc}")
            return
        if not isinstance(message, dict) or not isinstance(message.get("event"), str):
            self._error(ErrorKind.MALFORMED, "expected a JSON object with a string 'event'")
            return
        event = message["event"]
        if event not in EVENTS:
            self._error(ErrorKind.UNKNOWN_EVENT, f"unknown event {event[:40]!r}")
            return
        next_state = TRANSITIONS.get((self.state, event))
        if next_state is None:
            expected = "after 'stop'" if self.state is TwilioState.STOPPED else "before 'start'"
            self._error(ErrorKind.OUT_OF_ORDER, f"'{event}' {expected}" if event != "start" else "a second 'start'")
            return
        sid = message.get("streamSid")
        if self.stream_sid and sid is not None and sid != self.stream_sid:
            self._error(ErrorKind.MALFORMED, f"'{event}' for stream {str(sid)[:40]!r}, not {self.stream_sid!r}")
            return
        try:
            getattr(self, f"_on_{event}")(message)
        except _Malformed as exc:
            self._error(ErrorKind.MALFORMED, str(exc), fatal=event == "start")
            return
        if not self._failed:
            self.state = next_state

    def _on_connected(self, message: dict[str, Any]) -> None:
        pass

    def _on_start(self, message: dict[str, Any]) -> None:
        start = _field(message, "start", dict)
        stream_sid = _field(start, "streamSid", str, "start")
        call_sid = _field(start, "callSid", str, "start")
        try:  # it names the recording and the records row: only Twilio's own shape (CA + 32 hex) is taken
            check_call_id(self.transport, call_sid)
        except BadCallId as exc:
            raise _Malformed(str(exc)) from None
        media_format = start.get("mediaFormat", MEDIA_FORMAT)
        if media_format != MEDIA_FORMAT:
            self._error(ErrorKind.UNSUPPORTED, f"media format {media_format!r}; expected {MEDIA_FORMAT}", fatal=True)
            return
        raw_parameters = start.get("customParameters") or {}
        if not isinstance(raw_parameters, dict):
            raise _Malformed("'start.customParameters' must be an object")
        parameters = {str(k): str(v) for k, v in raw_parameters.items()}
        if self.verify_start is not None and not self.verify_start(call_sid, parameters):
            self._error(ErrorKind.FORBIDDEN, f"the start of {call_sid} lacks the token its TwiML handed out",
                        fatal=True)
            return
        parameters.pop("token", None)  # a secret: not a call parameter to log or show
        self.stream_sid, self.call_sid = stream_sid, call_sid
        self._start()
        self._events.append(
            CallStarted(
                call_id=call_sid,
                transport=self.transport,
                sample_rate=SAMPLE_RATE,
                caller=parameters.get("caller", ""),
                called=parameters.get("called", ""),
                stream_id=stream_sid,
                parameters=parameters,
            )
        )

    def _on_media(self, message: dict[str, Any]) -> None:
        media = _field(message, "media", dict)
        payload = _field(media, "payload", str, "media")
        if media.get("track", "inbound") != "inbound":
            return  # only the caller's track is ours to hear
        try:
            ulaw = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as exc:
            self._error(ErrorKind.BAD_PAYLOAD, f"media payload is not base64: {exc}")
            return
        if ulaw:
            self._events.append(AudioIn(ulaw_decode(ulaw), SAMPLE_RATE, _counter(media.get("timestamp"))))

    def _on_dtmf(self, message: dict[str, Any]) -> None:
        digit = _field(_field(message, "dtmf", dict), "digit", str, "dtmf")
        if digit not in DTMF_DIGITS:
            self._error(ErrorKind.BAD_PAYLOAD, f"DTMF digit {digit[:10]!r} is not one of 0-9 * # A-D")
            return
        self._events.append(Dtmf(digit))

    def _on_mark(self, message: dict[str, Any]) -> None:
        self._events.append(MarkPlayed(_field(_field(message, "mark", dict), "name", str, "mark")))

    def _on_stop(self, message: dict[str, Any]) -> None:
        self._end("stop")

    # Outbound.

    def _send_json(self, message: dict[str, Any]) -> None:
        if self.close_expected:
            return  # the stream is over; late audio from the pipeline is dropped
        if not self.stream_sid:
            raise LocalProtocolError(f"cannot send '{message['event']}' before Twilio's 'start'")
        self._output.append(json.dumps({"event": message.pop("event"), "streamSid": self.stream_sid, **message}))

    def send_audio(self, pcm: bytes) -> None:
        """Queue PCM16 8 kHz audio as one `media` message (mu-law, base64)."""
        self._check_pcm(pcm)
        if pcm:
            payload = base64.b64encode(ulaw_encode(pcm)).decode("ascii")
            self._send_json({"event": "media", "media": {"payload": payload}})

    def send_mark(self, name: str) -> None:
        """Ask Twilio to echo `mark` `name` once the audio sent so far has played."""
        self._send_json({"event": "mark", "mark": {"name": name}})

    def send_clear(self) -> None:
        """Tell Twilio to drop the audio it buffered (it then echoes the pending marks)."""
        self._send_json({"event": "clear"})

    def send_hangup(self, reason: str = "local_hangup") -> None:
        """Media Streams has no hang-up message: closing the websocket ends `<Connect>` and the call."""
        self._end(reason)
        self._hung_up = True
