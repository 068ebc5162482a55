"""RTCP: the receiver statistics RFC 3550 defines (loss with sequence wrap-around, jitter), our compound SR + SDES
read back as a peer reads it, garbage counted not fatal, and a real call over loopback: our SDP names the RTCP
port, and when the call ends the peer gets our last sender report, with the loss we saw of its packets."""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest

from tests.sip_peers import CallerPhone, answered, echo_server  # noqa: F401  (the `server` fixture)
from voice_gateway.audio.g711 import ulaw_encode
from voice_gateway.transports.sip.rtcp import SDES, SR, ReceiverStats, RtcpReader, sender_report
from voice_gateway.transports.sip.rtp import build_packet
from voice_gateway.transports.sip.sdp import parse_offer
from voice_gateway.transports.sip.server import SipServer

pytestmark = pytest.mark.anyio


def test_loss_and_jitter_are_counted_across_the_sequence_wrap() -> None:
    stats = ReceiverStats()
    for seq in [65530, 65531, 65533, 65534, 65535, 0, 1, 3]:  # 65532 and 2 lost, the counter wraps
        index = seq + (65536 if seq < 100 else 0) - 65530
        stats.update(seq, index * 160, 7, index * 0.02)  # each packet on time
    assert (stats.expected, stats.received, stats.lost, stats.cycles) == (10, 8, 2, 65536)
    assert stats.jitter < 1.0  # packets on time: no jitter
    late = ReceiverStats()
    for n in range(50):
        late.update(n, n * 160, 7, n * 0.02 + (0.03 if n % 2 else 0.0))  # every other packet 30 ms late
    assert 100 < late.jitter < 300  # in timestamp units (8 per ms)


def test_our_sender_report_reads_back_as_the_peer_reads_it() -> None:
    stats = ReceiverStats()
    for seq in (10, 11, 13, 14):
        stats.update(seq, seq * 160, 0xABCDEF, seq * 0.02)
    packet = sender_report(0x1234, rtp_timestamp=16000, packets=100, octets=16000, cname="callpilot@127.0.0.1",
                           stats=stats, now_s=1_800_000_000.0)
    first, kind, length = struct.unpack_from("!BBH", packet)
    assert (first & 0x1F, kind) == (1, SR) and packet[4 * (length + 1) + 1] == SDES
    assert b"callpilot@127.0.0.1" in packet and len(packet) % 4 == 0
    peer = RtcpReader(our_ssrc=0xABCDEF)  # the far end's view: the report block is about its stream
    peer.receive(packet)
    assert peer.latest is not None and peer.latest.cumulative_lost == 1 and abs(peer.latest.fraction_lost - 0.2) < 0.01  # 1 of 5, in 1/256ths
    assert peer.packets == 1 and peer.kinds == [SR, SDES]
    for garbage in (b"", b"\x00" * 8, b"\x81\xc9\x00\x10" + b"\x00" * 8, b"\x80\xc8\x00\x06"):
        peer.receive(garbage)
    assert peer.malformed >= 3 and peer.latest.cumulative_lost == 1  # garbage changes nothing


async def test_a_call_names_its_rtcp_port_and_reports_the_loss_at_the_end(server: tuple[SipServer, list]) -> None:
    sip, _ = server
    phone = CallerPhone(sip.port)
    rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtcp.bind(("127.0.0.1", 0))
    rtcp.setblocking(False)
    try:
        offer = phone.offer() + f"a=rtcp:{rtcp.getsockname()[1]}\r\n"
        phone.request("INVITE", body=offer)
        replies = await phone.responses(lambda m: m.status >= 200)
        ok = replies[-1]
        ours = parse_offer(ok.body)
        assert ours.rtcp_port is not None and ours.rtcp_port != ours.port
        tag = (ok.get("to") or "").split("tag=")[1]
        phone.request("ACK", to_tag=tag)
        frame = ulaw_encode(struct.pack("<160h", *([1000, -1000] * 80)))
        for n in [0, 1, 2, 4, 5, 6, 7, 8]:  # packet 3 lost
            phone.rtp.sendto(build_packet(0, n, n * 160, 0x5151, frame), ("127.0.0.1", ours.port))
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
        phone.request("BYE", to_tag=tag)
        data = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(rtcp, 2048), 5.0)
        report = RtcpReader(our_ssrc=0x5151)
        report.receive(data)
        assert report.latest is not None and report.latest.cumulative_lost == 1
    finally:
        phone.close()
        rtcp.close()
