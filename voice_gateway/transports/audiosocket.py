"""Sans-I/O codec for Asterisk AudioSocket (TCP), our server's side.

Every frame is a 1-byte kind, a 2-byte big-endian payload length and the payload. Asterisk sends the
call's UUID first (with the caller's number in it when the dialplan follows `audiosocket_caller.py`), then
20 ms of signed-linear 16-bit 8 kHz mono audio (little-endian samples) per frame, DTMF digits and finally a
hang-up; we send audio frames and a hang-up.
"""

from __future__ import annotations

import uuid
from enum import IntEnum, StrEnum

from voice_gateway.audio.frames import FrameBuffer
from voice_gateway.events import DTMF_DIGITS, AudioIn, CallStarted, Dtmf, ErrorKind, MarkPlayed
from voice_gateway.transports.audiosocket_caller import caller_from_uuid
from voice_gateway.transports.base import CodecBase

SAMPLE_RATE = 8000
FRAME_BYTES = 320  # 20 ms of 8 kHz PCM16
HEADER_BYTES = 3
MAX_PAYLOAD_BYTES = 8000  # half a second of audio; Asterisk sends 320


class Kind(IntEnum):
    HANGUP = 0x00
    UUID = 0x01
    DTMF = 0x03
    AUDIO = 0x10  # signed linear, 16-bit, 8 kHz, mono
    ERROR = 0xFF


KINDS = frozenset(Kind)
# Payload lengths each kind allows, as (minimum, maximum).
PAYLOAD_LENGTHS: dict[Kind, tuple[int, int]] = {
    Kind.HANGUP: (0, 0),
    Kind.UUID: (16, 16),
    Kind.DTMF: (1, 1),
    Kind.AUDIO: (2, MAX_PAYLOAD_BYTES),
    Kind.ERROR: (0, 16),
}
# Asterisk's error codes are bit flags.
ASTERISK_ERRORS = {0x01: "hangup of calling party", 0x02: "frame forwarding error", 0x04: "memory (allocation) error"}


class AudioSocketState(StrEnum):
    NEW = "new"
    ACTIVE = "active"
    ENDED = "ended"


# (state, frame kind) -> next state; any other pair is out of order.
TRANSITIONS: dict[tuple[AudioSocketState, Kind], AudioSocketState] = {
    (AudioSocketState.NEW, Kind.UUID): AudioSocketState.ACTIVE,
    (AudioSocketState.NEW, Kind.HANGUP): AudioSocketState.ENDED,
    (AudioSocketState.NEW, Kind.ERROR): AudioSocketState.NEW,
    (AudioSocketState.ACTIVE, Kind.AUDIO): AudioSocketState.ACTIVE,
    (AudioSocketState.ACTIVE, Kind.DTMF): AudioSocketState.ACTIVE,
    (AudioSocketState.ACTIVE, Kind.ERROR): AudioSocketState.ACTIVE,
    (AudioSocketState.ACTIVE, Kind.HANGUP): AudioSocketState.ENDED,
}


def encode_frame(kind: int, payload: bytes = b"") -> bytes:
    """One AudioSocket frame: kind, big-endian length, payload."""
    if len(payload) > 0xFFFF:
        raise ValueError(f"AudioSocket payloads are at most 65535 bytes, got {len(payload)}")
    return bytes([kind]) + len(payload).to_bytes(2, "big") + payload


class AudioSocketCodec(CodecBase):
    """One AudioSocket connection: a byte stream in any split, events out; 20 ms audio frames back."""

    transport = "audiosocket"

    def __init__(self, *, max_payload_bytes: int = MAX_PAYLOAD_BYTES) -> None:
        super().__init__()
        self.max_payload_bytes = max_payload_bytes
        self.state = AudioSocketState.NEW
        self.call_id = ""
        self._buffer = bytearray()
        self._skip = 0  # payload bytes still to discard from a rejected frame
        self._frames = FrameBuffer(FRAME_BYTES)

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    def receive_data(self, data: bytes | str) -> None:
        """Feed bytes read from the socket; frames may be split or coalesced in any way."""
        if self._failed:
            return
        if isinstance(data, str):
            self._error(ErrorKind.MALFORMED, "AudioSocket is a byte stream, got text", fatal=True)
            return
        self._buffer += data
        while self._buffer:
            if self._skip:
                skipped = min(self._skip, len(self._buffer))
                del self._buffer[:skipped]
                self._skip -= skipped
                continue
            if len(self._buffer) < HEADER_BYTES:
                return
            kind_byte, length = self._buffer[0], int.from_bytes(self._buffer[1:3], "big")
            if not self._acceptable(kind_byte, length):
                del self._buffer[:HEADER_BYTES]
                self._skip = length
                continue
            if len(self._buffer) < HEADER_BYTES + length:
                return
            payload = bytes(self._buffer[HEADER_BYTES : HEADER_BYTES + length])
            del self._buffer[: HEADER_BYTES + length]
            self._on_frame(Kind(kind_byte), payload)

    def _acceptable(self, kind_byte: int, length: int) -> bool:
        """Check a header before its payload arrives, so a rejected payload is skipped, never buffered."""
        if kind_byte not in KINDS:
            self._error(ErrorKind.UNKNOWN_EVENT, f"unknown frame kind 0x{kind_byte:02x} ({length} bytes skipped)")
            return False
        kind = Kind(kind_byte)
        low, high = PAYLOAD_LENGTHS[kind]
        if kind is Kind.AUDIO and length > self.max_payload_bytes:
            self._error(ErrorKind.TOO_LARGE, f"audio frame of {length} bytes exceeds {self.max_payload_bytes}")
            return False
        if not low <= length <= high or (kind is Kind.AUDIO and length % 2):
            expected = f"{low}" if low == high else f"an even number of bytes from {low}"
            self._error(ErrorKind.BAD_PAYLOAD, f"{kind.name} frame of {length} bytes; expected {expected}")
            return False
        return True

    def _on_frame(self, kind: Kind, payload: bytes) -> None:
        next_state = TRANSITIONS.get((self.state, kind))
        if next_state is None:
            where = "after the hang-up" if self.state is AudioSocketState.ENDED else "in state " + self.state
            if kind is not Kind.UUID and self.state is AudioSocketState.NEW:
                where = "before the UUID"
            self._error(ErrorKind.OUT_OF_ORDER, f"{kind.name} frame {where}")
            return
        self.state = next_state
        if kind is Kind.UUID:
            call_uuid = uuid.UUID(bytes=payload)
            self.call_id = str(call_uuid)
            self._start()
            self._events.append(CallStarted(self.call_id, self.transport, SAMPLE_RATE, stream_id=self.call_id,
                                            caller=caller_from_uuid(call_uuid)))
        elif kind is Kind.AUDIO:
            self._events.append(AudioIn(payload, SAMPLE_RATE))
        elif kind is Kind.DTMF:
            digit = payload.decode("latin-1")
            if digit in DTMF_DIGITS:
                self._events.append(Dtmf(digit))
            else:
                self._error(ErrorKind.BAD_PAYLOAD, f"DTMF digit {digit!r} is not one of 0-9 * # A-D")
        elif kind is Kind.HANGUP:
            self._end("hangup")
        else:
            self._on_peer_error(payload)

    def _on_peer_error(self, payload: bytes) -> None:
        code = payload[0] if payload else 0
        names = [name for bit, name in ASTERISK_ERRORS.items() if code & bit] or ["no code"]
        self._error(ErrorKind.PEER_ERROR, f"Asterisk reported an error 0x{code:02x}: {', '.join(names)}")
        if code & 0x01:
            self.state = AudioSocketState.ENDED
            self._end("hangup")

    # Outbound.

    def send_audio(self, pcm: bytes) -> None:
        """Queue PCM16 8 kHz audio as 20 ms frames; a partial frame waits for more (or `flush_audio`)."""
        self._check_pcm(pcm)
        if self.close_expected:
            return
        for frame in self._frames.push(pcm):
            self._output.append(encode_frame(Kind.AUDIO, frame))

    def flush_audio(self) -> None:
        """Send the partial frame, padded with silence."""
        frame = self._frames.flush()
        if frame is not None and not self.close_expected:
            self._output.append(encode_frame(Kind.AUDIO, frame))

    def send_mark(self, name: str) -> None:
        """AudioSocket has no marks: flush, then report the mark played (the pipeline paces audio in real time)."""
        self.flush_audio()
        if not self.close_expected:
            self._events.append(MarkPlayed(name))

    def send_clear(self) -> None:
        """Drop the partial frame; AudioSocket has no playback buffer to clear beyond what we have not sent."""
        self._frames.clear()

    def send_hangup(self, reason: str = "local_hangup") -> None:
        """Queue a hang-up frame and end the call."""
        if not self.close_expected:
            self._frames.clear()
            self._output.append(encode_frame(Kind.HANGUP))
        self._end(reason)
        self._hung_up = True
