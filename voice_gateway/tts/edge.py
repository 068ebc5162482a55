"""edge-tts, Microsoft's online neural voices: fails fast when unreachable and stays skipped for a cool-down."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from voice_gateway.tts.breaker import CircuitBreaker
from voice_gateway.tts.types import AudioChunk, CircuitOpen, EngineUnavailable, pick_voice

log = logging.getLogger(__name__)

EDGE_VOICES = ("en-US-EmmaMultilingualNeural", "en-US-AndrewNeural", "zh-CN-XiaoxiaoNeural")
EDGE_ENDPOINT = ("speech.platform.bing.com", 443)
EDGE_SAMPLE_RATE = 24000


def decode_mp3(data: bytes, sample_rate: int = EDGE_SAMPLE_RATE) -> bytes:
    """MP3 bytes (edge-tts sends audio-24khz-48kbitrate-mono-mp3) to PCM16 mono at `sample_rate`."""
    import miniaudio

    try:
        decoded = miniaudio.decode(
            data, output_format=miniaudio.SampleFormat.SIGNED16, nchannels=1, sample_rate=sample_rate
        )
    except miniaudio.DecodeError as error:
        raise EngineUnavailable(f"edge: undecodable audio ({len(data)} bytes): {error}") from error
    return bytes(decoded.samples.tobytes())


class EdgeTts:
    """edge-tts behind a TCP pre-flight with a short connect timeout and a circuit breaker."""

    name = "edge"

    def __init__(
        self,
        *,
        voices: tuple[str, ...] = EDGE_VOICES,
        breaker: CircuitBreaker | None = None,
        # Network
        endpoint: tuple[str, int] = EDGE_ENDPOINT,
        connect_timeout_s: float = 0.25,
        receive_timeout_s: int = 10,
    ) -> None:
        self._voices = voices
        self.breaker = breaker or CircuitBreaker()
        self._endpoint = endpoint
        self._connect_timeout_s = connect_timeout_s
        self._receive_timeout_s = receive_timeout_s

    @property
    def voices(self) -> tuple[str, ...]:
        """Edge voice names; the service has many more, these are the ones the gateway uses."""
        return self._voices

    @property
    def sample_rate(self) -> int:
        """24000 Hz (decoded from the service's 24 kHz MP3)."""
        return EDGE_SAMPLE_RATE

    async def _preflight(self) -> None:
        """Open and close a TCP connection to the service within the connect timeout (DNS included)."""
        host, port = self._endpoint
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                _, writer = await asyncio.open_connection(host, port)
        except TimeoutError as error:
            limit = self._connect_timeout_s
            raise EngineUnavailable(f"edge: no connection to {host}:{port} within {limit}s") from error
        except OSError as error:
            raise EngineUnavailable(f"edge: cannot reach {host}:{port}: {error}") from error
        writer.close()

    async def _fetch_mp3(self, text: str, voice: str) -> bytes:
        """The whole utterance as MP3 from the service."""
        import edge_tts

        communicate = edge_tts.Communicate(
            text, voice, connect_timeout=max(1, round(self._connect_timeout_s)), receive_timeout=self._receive_timeout_s
        )
        mp3 = bytearray()
        async for message in communicate.stream():
            if message["type"] == "audio" and "data" in message:
                mp3 += message["data"]
        return bytes(mp3)

    async def synthesize(self, text: str, voice: str | None = None) -> AsyncIterator[AudioChunk]:
        """The utterance's audio as one chunk; EngineUnavailable at once while the breaker is open."""
        chosen = pick_voice(self.name, self.voices, voice)
        if not self.breaker.allow():
            raise CircuitOpen(f"edge: skipped, circuit open after {self.breaker.failures} failure(s)")
        try:
            await self._preflight()
            pcm = decode_mp3(await self._fetch_mp3(text, chosen))
        except EngineUnavailable:
            self.breaker.record_failure()
            raise
        except Exception as error:  # aiohttp, edge-tts and websocket errors all mean "not now"
            self.breaker.record_failure()
            raise EngineUnavailable(f"edge: {type(error).__name__}: {error}") from error
        self.breaker.record_success()
        yield AudioChunk(pcm=pcm, sample_rate=EDGE_SAMPLE_RATE, engine=self.name)
