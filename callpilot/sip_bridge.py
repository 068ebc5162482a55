"""A call callpilot placed (an agent's phone, an attended transfer's consulted party) joined to the Redis audio
bridge: its RTP (G.711, 8 kHz) as the bridge's 16 kHz PCM frames, and back."""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable

from voice_gateway.audio.resample import StreamResampler
from voice_gateway.events import AudioIn
from voice_gateway.pipeline.hold import ToBridge
from voice_gateway.transports.sip.call import SipCall

RATE = 8000
BRIDGE_RATE = 16000


async def rtp_to_bridge(call: SipCall, publish: Callable[[bytes], Awaitable[None]]) -> None:
    """What the far end says, as 20 ms frames at 16 kHz to `publish`, until its RTP socket closes (its BYE)."""
    assert call.codec is not None and call.rtp is not None
    frames = ToBridge(RATE)
    while (data := await call.rtp.receive()) is not None:
        call.codec.receive_data(data)
        for event in call.codec.events_received():
            if isinstance(event, AudioIn):
                for frame in frames.frames(event.pcm):
                    await publish(frame)


async def bridge_to_rtp(call: SipCall, heard: AsyncIterable[object]) -> None:
    """The bridge's 16 kHz frames (other items, such as keys or hold switches, are skipped) as RTP to the far end."""
    assert call.codec is not None and call.rtp is not None
    down = StreamResampler(BRIDGE_RATE, RATE)
    async for item in heard:
        if isinstance(item, bytes):
            call.codec.send_audio(down.process(item))
            for packet in call.codec.data_to_send():
                await call.rtp.write(packet)


async def hang_up(call: SipCall, reason: str) -> None:
    """End a call we placed (the server sends BYE), unless it has ended already."""
    if call.rtp is not None and not call.bye_sent:
        if call.codec is not None:
            call.codec.send_hangup(reason)
        await call.rtp.close(1000)
