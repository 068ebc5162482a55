"""RTCP (RFC 3550 §6) for one call's stream, sans-I/O: what we received (loss and jitter, §A.3 and §A.8), our
sender report with a reception report block and our CNAME (a compound SR + SDES packet, every few seconds), and
the peer's reports read back (the loss and jitter it sees of our audio). Trunks watch RTCP for call quality and
some hang up a call whose RTCP stops."""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass, field

SR, RR, SDES, BYE = 200, 201, 202, 203
NTP_EPOCH = 2208988800  # seconds from 1900 to 1970
RATE = 8000


@dataclass
class ReceiverStats:
    """The inbound stream as RFC 3550 A.1/A.3/A.8 count it: highest sequence (with wrap-arounds), packets
    received and expected, interarrival jitter in timestamp units."""

    base_seq: int | None = None
    max_seq: int = 0
    cycles: int = 0
    received: int = 0
    jitter: float = 0.0
    ssrc: int = 0
    _transit: float | None = None
    _expected_prior: int = 0
    _received_prior: int = 0

    def update(self, sequence: int, timestamp: int, ssrc: int, arrival_s: float) -> None:
        if self.base_seq is None:
            self.base_seq, self.max_seq, self.ssrc = sequence, sequence, ssrc
        delta = (sequence - self.max_seq) & 0xFFFF
        if 0 < delta < 0x8000:
            if sequence < self.max_seq:
                self.cycles += 1 << 16
            self.max_seq = sequence
        self.received += 1
        transit = arrival_s * RATE - timestamp
        if self._transit is not None:
            d = abs(transit - self._transit)
            self.jitter += (d - self.jitter) / 16
        self._transit = transit

    @property
    def expected(self) -> int:
        return 0 if self.base_seq is None else self.cycles + self.max_seq - self.base_seq + 1

    @property
    def lost(self) -> int:
        return max(0, self.expected - self.received)

    def report_block(self, last_sr: int = 0, since_sr: int = 0) -> bytes:
        """A reception report block (24 bytes); the fraction lost is over the interval since the last one."""
        expected_interval = self.expected - self._expected_prior
        received_interval = self.received - self._received_prior
        self._expected_prior, self._received_prior = self.expected, self.received
        lost_interval = expected_interval - received_interval
        fraction = 0 if expected_interval <= 0 or lost_interval <= 0 else (lost_interval << 8) // expected_interval
        cumulative = min(self.lost, 0x7FFFFF)
        return struct.pack("!IBBHIIII", self.ssrc, min(fraction, 255), (cumulative >> 16) & 0xFF,
                           cumulative & 0xFFFF, (self.cycles + self.max_seq) & 0xFFFFFFFF,
                           int(self.jitter) & 0xFFFFFFFF, last_sr, since_sr)


def ntp_now(now_s: float | None = None) -> tuple[int, int]:
    now = time.time() if now_s is None else now_s
    seconds = int(now) + NTP_EPOCH
    return seconds & 0xFFFFFFFF, int((now % 1) * (1 << 32)) & 0xFFFFFFFF


def sender_report(ssrc: int, *, rtp_timestamp: int, packets: int, octets: int, cname: str,
                  stats: ReceiverStats | None = None, now_s: float | None = None) -> bytes:
    """A compound RTCP packet: SR (with a report block when we have received anything), then SDES CNAME."""
    blocks = stats.report_block() if stats is not None and stats.base_seq is not None else b""
    count = 1 if blocks else 0
    ntp_hi, ntp_lo = ntp_now(now_s)
    body = struct.pack("!IIIIII", ssrc, ntp_hi, ntp_lo, rtp_timestamp & 0xFFFFFFFF, packets & 0xFFFFFFFF,
                       octets & 0xFFFFFFFF) + blocks
    sr = struct.pack("!BBH", 0x80 | count, SR, (len(body) + 4) // 4 - 1) + body
    item = cname.encode()[:255]
    chunk = struct.pack("!I", ssrc) + bytes([1, len(item)]) + item + b"\x00"
    chunk += b"\x00" * (-len(chunk) % 4)
    sdes = struct.pack("!BBH", 0x81, SDES, (len(chunk) + 4) // 4 - 1) + chunk
    return sr + sdes


@dataclass(frozen=True)
class PeerReport:
    """What the far end says it received of our stream (from its SR or RR)."""

    fraction_lost: float  # 0..1, in its last interval
    cumulative_lost: int
    jitter_ms: float


@dataclass
class RtcpReader:
    """Reads the peer's compound packets; keeps its latest report on our stream and whether it said BYE."""

    our_ssrc: int
    latest: PeerReport | None = None
    packets: int = 0
    malformed: int = 0
    bye: bool = False
    kinds: list[int] = field(default_factory=list)

    def receive(self, data: bytes) -> None:
        offset = 0
        try:
            while offset + 4 <= len(data):
                first, kind, length = struct.unpack_from("!BBH", data, offset)
                if first >> 6 != 2:
                    raise ValueError("not RTCP version 2")
                end = offset + 4 * (length + 1)
                if end > len(data):
                    raise ValueError("RTCP length past the packet")
                self.kinds.append(kind)
                count = first & 0x1F
                if kind in (SR, RR):
                    blocks = offset + (28 if kind == SR else 8)
                    for n in range(count):
                        at = blocks + 24 * n
                        if at + 24 > end:
                            raise ValueError("report block past the packet")
                        ssrc, fraction, hi, lo, _seq, jitter, _lsr, _dlsr = struct.unpack_from("!IBBHIIII", data, at)
                        if ssrc == self.our_ssrc:
                            self.latest = PeerReport(fraction / 256, (hi << 16) | lo, jitter / RATE * 1000)
                elif kind == BYE:
                    self.bye = True
                offset = end
            self.packets += 1
        except (ValueError, struct.error):
            self.malformed += 1
