"""Twilio's side of a Media Stream, sans-I/O: what the simulated caller and the tests play.

It writes exactly what Twilio writes (counters as strings, 20 ms mu-law chunks) and reads what our
server writes back (`media`, `mark`, `clear`) as `AudioOut`, `Mark` and `Clear` commands.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from voice_gateway.audio.frames import FrameBuffer
from voice_gateway.audio.g711 import ulaw_decode, ulaw_encode
from voice_gateway.events import AudioOut, Clear, ErrorKind, Mark, TransportError
from voice_gateway.transports.twilio import MEDIA_FORMAT, SAMPLE_RATE

CallerEvent = AudioOut | Mark | Clear | TransportError


class TwilioCallerCodec:
    """Plays Twilio: `connect()`, `send_audio()`, `send_dtmf()`, `stop()`; reads the server's replies."""

    def __init__(
        self,
        *,
        stream_sid: str = "MZ00000000000000000000000000000000",
        call_sid: str = "CA00000000000000000000000000000000",
        account_sid: str = "AC00000000000000000000000000000000",
        parameters: Mapping[str, str] | None = None,
    ) -> None:
        self.stream_sid, self.call_sid, self.account_sid = stream_sid, call_sid, account_sid
        self.parameters = dict(parameters or {})
        self._sequence = 0
        self._chunk = 0
        self._frames = FrameBuffer.for_pcm16(SAMPLE_RATE)
        self._output: list[str] = []
        self._events: list[CallerEvent] = []

    def _emit(self, event: str, body: dict[str, Any]) -> None:
        self._sequence += 1
        message = {"event": event, "sequenceNumber": str(self._sequence), **body, "streamSid": self.stream_sid}
        self._output.append(json.dumps(message))

    def connect(self) -> None:
        """Queue `connected` and `start`."""
        self._output.append(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        start = {
            "accountSid": self.account_sid,
            "streamSid": self.stream_sid,
            "callSid": self.call_sid,
            "tracks": ["inbound"],
            "mediaFormat": MEDIA_FORMAT,
            "customParameters": self.parameters,
        }
        self._emit("start", {"start": start})

    def send_audio(self, pcm: bytes) -> None:
        """Queue caller audio (PCM16, 8 kHz) as 20 ms `media` messages; a partial frame waits."""
        for frame in self._frames.push(pcm):
            self._send_frame(frame)

    def flush_audio(self) -> None:
        """Send the partial frame, padded with silence."""
        frame = self._frames.flush()
        if frame is not None:
            self._send_frame(frame)

    def _send_frame(self, frame: bytes) -> None:
        self._chunk += 1
        media = {
            "track": "inbound",
            "chunk": str(self._chunk),
            "timestamp": str((self._chunk - 1) * 20),
            "payload": base64.b64encode(ulaw_encode(frame)).decode("ascii"),
        }
        self._emit("media", {"media": media})

    def send_dtmf(self, digit: str) -> None:
        self._emit("dtmf", {"dtmf": {"track": "inbound_track", "digit": digit}})

    def send_mark_played(self, name: str) -> None:
        """Echo a mark: the audio before it has played."""
        self._emit("mark", {"mark": {"name": name}})

    def stop(self) -> None:
        self._emit("stop", {"stop": {"accountSid": self.account_sid, "callSid": self.call_sid}})

    def data_to_send(self) -> list[str]:
        output, self._output = self._output, []
        return output

    def receive_data(self, data: bytes | str) -> None:
        """Parse one message from the server: `media`, `mark` or `clear`."""
        try:
            message = json.loads(data)
            event = message["event"]
            if message.get("streamSid") != self.stream_sid:
                raise ValueError(f"streamSid {message.get('streamSid')!r} is not {self.stream_sid!r}")
            if event == "media":
                ulaw = base64.b64decode(message["media"]["payload"], validate=True)
                self._events.append(AudioOut(ulaw_decode(ulaw), SAMPLE_RATE))
            elif event == "mark":
                self._events.append(Mark(str(message["mark"]["name"])))
            elif event == "clear":
                self._events.append(Clear())
            else:
                self._events.append(TransportError(ErrorKind.UNKNOWN_EVENT, f"unknown event {event!r}"))
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            self._events.append(TransportError(ErrorKind.MALFORMED, f"bad server message: {exc!r}"))

    def events_received(self) -> list[CallerEvent]:
        events, self._events = self._events, []
        return events
