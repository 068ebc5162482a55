"""A chain of engines that speaks with the first one able to: edge-tts -> offline default -> espeak-ng."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from voice_gateway.tts.formats import resample_chunk
from voice_gateway.tts.types import AudioChunk, CircuitOpen, EngineUnavailable, TtsEngine

log = logging.getLogger(__name__)

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def language_of(text: str) -> str:
    """"zh" if the text has Chinese characters, else "en" (the gateway's two languages)."""
    return "zh" if _HAN.search(text) else "en"


@dataclass(frozen=True)
class FallbackLink:
    """One engine in the chain, the voice it uses, and the languages it may speak."""

    engine: TtsEngine
    voice: str | None = None
    languages: frozenset[str] = frozenset({"en"})


class FallbackTts:
    """Tries each link for the text's language in order; the first that starts speaking finishes the text.

    Every chunk comes out at `sample_rate` (links at other rates are resampled per utterance) and names the
    engine that spoke it. An engine failing after its first chunk is not retried elsewhere: the caller has
    already heard part of the utterance.
    """

    name = "fallback"

    def __init__(self, links: Sequence[FallbackLink], *, sample_rate: int | None = None) -> None:
        if not links:
            raise ValueError("a fallback chain needs at least one engine")
        self.links = tuple(links)
        self._sample_rate = sample_rate or links[0].engine.sample_rate

    @property
    def voices(self) -> tuple[str, ...]:
        """Every link's voices, in chain order, without repeats."""
        return tuple(dict.fromkeys(voice for link in self.links for voice in link.engine.voices))

    @property
    def sample_rate(self) -> int:
        """The one rate of every chunk the chain yields."""
        return self._sample_rate

    async def _speak(self, link: FallbackLink, text: str, voice: str | None) -> AsyncIterator[AudioChunk]:
        chosen = voice if voice in link.engine.voices else link.voice
        if link.engine.sample_rate == self._sample_rate:
            async for chunk in link.engine.synthesize(text, chosen):
                yield chunk
            return
        # Resample whole utterances, so no filter edges fall inside the audio.
        chunks = [chunk async for chunk in link.engine.synthesize(text, chosen) if chunk.pcm]
        if chunks:
            yield resample_chunk(AudioChunk.join(chunks), self._sample_rate)

    async def synthesize(self, text: str, voice: str | None = None) -> AsyncIterator[AudioChunk]:
        """The text spoken by the first link that can; EngineUnavailable if none can."""
        language = language_of(text)
        failures: list[str] = []
        for link in self.links:
            if language not in link.languages:
                continue
            stream = self._speak(link, text, voice)
            try:
                first = await anext(stream)
            except StopAsyncIteration:
                failures.append(f"{link.engine.name}: no audio")
                continue
            except CircuitOpen as error:
                log.debug("tts: %s", error)
                failures.append(str(error))
                continue
            except EngineUnavailable as error:
                log.warning("tts: %s unavailable, falling back: %s", link.engine.name, error)
                failures.append(str(error))
                continue
            log.info("tts: %s spoke %d characters (%s)", link.engine.name, len(text), language)
            yield first
            async for chunk in stream:
                yield chunk
            return
        raise EngineUnavailable(f"no engine could speak {language!r} text: {'; '.join(failures) or 'none for it'}")
