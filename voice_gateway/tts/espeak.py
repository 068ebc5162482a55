"""espeak-ng through a subprocess: robotic but always there, and the Mandarin voice (`cmn`)."""

from __future__ import annotations

import asyncio
import shutil
import struct
from collections.abc import AsyncIterator

from voice_gateway.tts.types import AudioChunk, EngineUnavailable, pick_voice

ESPEAK_VOICES = ("en-us", "en-gb", "cmn")
# espeak-ng's own "cmn" voice turns Han characters into pinyin with tone digits and then reads those as
# English ("ni three hao three"); "cmn-latn-pinyin" speaks the same pinyin as Mandarin.
ESPEAK_NAMES = {"cmn": "cmn-latn-pinyin"}


class WavHeaderError(ValueError):
    """espeak-ng's stdout did not start with a PCM16 mono RIFF header."""


async def _read_wav_header(stream: asyncio.StreamReader) -> int:
    """Consume a streamed RIFF header up to the data chunk; returns the sample rate."""
    riff = await stream.readexactly(12)
    if riff[:4] != b"RIFF" or riff[8:12] != b"WAVE":
        raise WavHeaderError(f"not a WAV stream: {riff!r}")
    rate = 0
    while True:
        chunk_id, size = struct.unpack("<4sI", await stream.readexactly(8))
        if chunk_id == b"data":
            if not rate:
                raise WavHeaderError("data chunk before fmt chunk")
            return rate
        body = await stream.readexactly(size)
        if chunk_id == b"fmt ":
            fmt, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
            if (fmt, channels, bits) != (1, 1, 16):
                raise WavHeaderError(f"expected PCM16 mono, got format={fmt} channels={channels} bits={bits}")


class EspeakTts:
    """espeak-ng (`apt-get install espeak-ng`), run once per utterance, its audio streamed from stdout."""

    name = "espeak"

    def __init__(
        self,
        *,
        binary: str = "espeak-ng",
        voices: tuple[str, ...] = ESPEAK_VOICES,
        words_per_minute: int = 165,
        chunk_bytes: int = 8820,
    ) -> None:
        path = shutil.which(binary)
        if path is None:
            raise EngineUnavailable(f"espeak: {binary} not found; apt-get install -y espeak-ng")
        self._binary = path
        self._voices = voices
        self._words_per_minute = words_per_minute
        self._chunk_bytes = chunk_bytes

    @property
    def voices(self) -> tuple[str, ...]:
        """espeak-ng voice names; "cmn" is Mandarin."""
        return self._voices

    @property
    def sample_rate(self) -> int:
        """espeak-ng always writes 22050 Hz."""
        return 22050

    async def synthesize(self, text: str, voice: str | None = None) -> AsyncIterator[AudioChunk]:
        """Chunks of about 200 ms, yielded as espeak-ng writes them."""
        chosen = pick_voice(self.name, self.voices, voice)
        chosen = ESPEAK_NAMES.get(chosen, chosen)
        process = await asyncio.create_subprocess_exec(
            self._binary, "-v", chosen, "-s", str(self._words_per_minute), "--stdout", "--", text,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        assert process.stdout is not None and process.stderr is not None
        try:
            try:
                rate = await _read_wav_header(process.stdout)
            except (asyncio.IncompleteReadError, WavHeaderError) as error:
                stderr = (await process.stderr.read()).decode(errors="replace").strip()
                raise EngineUnavailable(f"espeak: {stderr or error}") from error
            pending = b""
            while block := await process.stdout.read(self._chunk_bytes):
                pending += block
                whole = len(pending) - len(pending) % 2
                if whole >= self._chunk_bytes:
                    yield AudioChunk(pcm=pending[:whole], sample_rate=rate, engine=self.name)
                    pending = pending[whole:]
            if len(pending) >= 2:
                yield AudioChunk(pcm=pending[: len(pending) - len(pending) % 2], sample_rate=rate, engine=self.name)
        finally:
            if process.returncode is None:
                process.kill()
            await process.wait()
