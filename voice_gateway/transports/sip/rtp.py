"""RTP (RFC 3550) audio and RFC 4733 telephone-events as a call `Codec`: packets in -> events, audio out ->
packets. Sans-I/O: the SIP server gives it datagrams from the caller's address and sends what it returns.

Inbound, a small jitter buffer puts packets back in order (up to `REORDER` packets late), drops duplicates and
packets older than what was played, and fills a short loss with silence so the call's clock (caller audio)
keeps time; a jump in sequence or timestamp (the peer restarted its stream) re-synchronises. Outbound, 20 ms
packets of G.711 with our own sequence, timestamp and SSRC; a marker bit on the first packet of each talk spurt.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable

from voice_gateway.audio import FrameBuffer, frame_bytes
from voice_gateway.audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from voice_gateway.events import AudioIn, CallStarted, Dtmf, ErrorKind, MarkPlayed
from voice_gateway.transports.base import CodecBase
from voice_gateway.transports.sip.rtcp import ReceiverStats
from voice_gateway.transports.sip.sdp import PCMA, PCMU

RATE = 8000
SAMPLES = 160  # 20 ms
FRAME = frame_bytes(RATE)
REORDER = 3  # packets held back to put a late one in its place
MAX_FILL = 5  # lost packets filled with silence (100 ms); a longer gap just continues
MAX_PACKET = 1500
DTMF_EVENTS = "0123456789*#ABCD"
_HEADER = struct.Struct("!BBHII")


def build_packet(payload_type: int, sequence: int, timestamp: int, ssrc: int, payload: bytes, *,
                 marker: bool = False) -> bytes:
    return _HEADER.pack(0x80, (0x80 if marker else 0) | payload_type, sequence & 0xFFFF,
                        timestamp & 0xFFFFFFFF, ssrc) + payload


def parse_packet(data: bytes) -> tuple[int, int, int, int, bytes]:
    """(payload type, sequence, timestamp, ssrc, payload); ValueError for anything that is not RTP v2."""
    if len(data) < 12:
        raise ValueError(f"{len(data)} bytes is too short for RTP")
    first, second, sequence, timestamp, ssrc = _HEADER.unpack_from(data)
    if first >> 6 != 2:
        raise ValueError(f"RTP version {first >> 6}")
    offset = 12 + 4 * (first & 0x0F)
    if first & 0x10:  # header extension
        if len(data) < offset + 4:
            raise ValueError("truncated RTP header extension")
        offset += 4 + 4 * struct.unpack_from("!H", data, offset + 2)[0]
    end = len(data)
    if first & 0x20 and end > offset:  # padding
        end -= data[-1]
    if offset > end:
        raise ValueError("RTP header longer than the packet")
    return second & 0x7F, sequence, timestamp, ssrc, bytes(data[offset:end])


def _newer(a: int, b: int) -> bool:
    """Sequence number `a` comes after `b` (16-bit wrap-around)."""
    return 0 < (a - b) & 0xFFFF < 0x8000


class RtpCodec(CodecBase):
    """One SIP call's media: G.711 (PCMU or PCMA) at 8 kHz, telephone-events on `dtmf_payload_type`."""

    transport = "sip"

    def __init__(self, call_id: str, *, payload_type: int = PCMU, dtmf_payload_type: int | None = 101,
                 caller: str = "", called: str = "", ssrc: int = 0x5EED, parameters: dict[str, str] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        if payload_type not in (PCMU, PCMA):
            raise ValueError(f"payload type {payload_type} is not G.711")
        self.call_id = call_id
        self.payload_type, self.dtmf_payload_type = payload_type, dtmf_payload_type
        self._encode = ulaw_encode if payload_type == PCMU else alaw_encode
        self._decode = ulaw_decode if payload_type == PCMU else alaw_decode
        self.ssrc = ssrc
        self._ssrc, self._sequence, self._timestamp = ssrc, 0, 0
        self._talking = False
        self._frames = FrameBuffer(FRAME)
        self._expected: int | None = None  # the next inbound sequence number to play
        self._held: dict[int, bytes] = {}
        self._last_event: tuple[int, int] | None = None  # (timestamp, event) of the last key reported
        self.late_or_duplicate = 0
        self.stats = ReceiverStats()  # for our RTCP reports: loss and jitter of what the caller sends
        self.packets_sent = self.octets_sent = 0
        self._clock = clock
        self._start()
        self._events.append(CallStarted(call_id, self.transport, RATE, caller=caller, called=called,
                                        stream_id=call_id, parameters=dict(parameters or {})))

    @property
    def sample_rate(self) -> int:
        return RATE

    # Inbound.

    def receive_data(self, data: bytes | str) -> None:
        if self._failed or self._ended or isinstance(data, str):
            return
        if len(data) > MAX_PACKET:
            self._error(ErrorKind.TOO_LARGE, f"RTP packet of {len(data)} bytes")
            return
        try:
            payload_type, sequence, timestamp, ssrc, payload = parse_packet(data)
        except ValueError as exc:
            self._error(ErrorKind.MALFORMED, str(exc))
            return
        if payload_type in (self.payload_type, self.dtmf_payload_type):
            self.stats.update(sequence, timestamp, ssrc, self._clock())
        if payload_type == self.dtmf_payload_type:
            self._telephone_event(timestamp, payload)
        elif payload_type == self.payload_type:
            self._audio(sequence, payload)
        elif payload_type in (13, 19):  # comfort noise: silence
            return
        else:
            self._error(ErrorKind.UNSUPPORTED, f"RTP payload type {payload_type} was not negotiated")

    def _audio(self, sequence: int, payload: bytes) -> None:
        expected = self._expected
        if expected is None:
            expected = self._expected = sequence
        distance = (sequence - expected) & 0xFFFF
        if distance >= 0x8000 and (expected - sequence) & 0xFFFF < 100:
            self.late_or_duplicate += 1  # played already (or given up on)
            return
        if distance >= 0x8000 or distance > 100:  # the stream jumped: start again from here
            self._play_held()
            self._expected, distance = sequence, 0
        if sequence in self._held:
            self.late_or_duplicate += 1
            return
        self._held[sequence] = payload
        self._release()

    def _release(self) -> None:
        """Play held packets in order; skip (or fill) a missing one once `REORDER` later packets wait."""
        while self._held and self._expected is not None:
            if self._expected in self._held:
                self._emit(self._held.pop(self._expected))
                self._expected = (self._expected + 1) & 0xFFFF
            elif len(self._held) > REORDER:
                nearest = min(self._held, key=lambda s: (s - self._expected) & 0xFFFF)  # type: ignore[operator]
                lost = (nearest - self._expected) & 0xFFFF
                for _ in range(min(lost, MAX_FILL)):
                    self._events.append(AudioIn(bytes(FRAME), RATE))
                self._expected = nearest
            else:
                return

    def _play_held(self) -> None:
        for sequence in sorted(self._held, key=lambda s: (s - (self._expected or 0)) & 0xFFFF):
            self._emit(self._held[sequence])
        self._held.clear()

    def _emit(self, payload: bytes) -> None:
        if payload:
            self._events.append(AudioIn(self._decode(payload), RATE))

    def _telephone_event(self, timestamp: int, payload: bytes) -> None:
        if len(payload) < 4:
            self._error(ErrorKind.BAD_PAYLOAD, f"telephone-event of {len(payload)} bytes")
            return
        event = payload[0]
        if event >= len(DTMF_EVENTS):
            return  # other events (flash, tones): not keys
        if self._last_event == (timestamp, event):
            return  # the same key: its updates and the three end packets
        self._last_event = (timestamp, event)
        self._events.append(Dtmf(DTMF_EVENTS[event]))

    def key(self, digit: str) -> None:
        """A key from SIP INFO (application/dtmf-relay)."""
        if digit in DTMF_EVENTS and not self._ended:
            self._events.append(Dtmf(digit))

    def peer_hung_up(self) -> None:
        """The caller sent BYE."""
        self._end("hangup")

    # Outbound.

    def send_audio(self, pcm: bytes) -> None:
        self._check_pcm(pcm)
        if self.close_expected:
            return
        for frame in self._frames.push(pcm):
            self._packet(frame)

    def _packet(self, frame: bytes) -> None:
        payload = self._encode(frame)
        self._output.append(build_packet(self.payload_type, self._sequence, self._timestamp, self._ssrc,
                                         payload, marker=not self._talking))
        self.packets_sent += 1
        self.octets_sent += len(payload)
        self._talking = True
        self._sequence = (self._sequence + 1) & 0xFFFF
        self._timestamp = (self._timestamp + SAMPLES) & 0xFFFFFFFF

    def send_mark(self, name: str) -> None:
        """RTP has no marks: send the partial frame, then report the mark played (the pipeline paces audio)."""
        frame = self._frames.flush()
        if frame is not None and not self.close_expected:
            self._packet(frame)
        self._talking = False
        if not self.close_expected:
            self._events.append(MarkPlayed(name))

    @property
    def rtp_timestamp(self) -> int:
        """The timestamp of our next packet (for the RTCP sender report)."""
        return self._timestamp

    def send_clear(self) -> None:
        self._frames.clear()
        self._talking = False

    def send_hangup(self, reason: str = "local_hangup") -> None:
        """End the call; the SIP server sees `close_expected` and sends BYE."""
        self._frames.clear()
        self._end(reason)
        self._hung_up = True
