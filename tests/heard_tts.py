"""A real speech engine the test listens in on: what it was asked to say, and when each synthesis started and ended."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from voice_gateway.tts import AudioChunk, TtsEngine


class Heard:
    """Wraps a real engine; keeps the texts it was asked to say (`texts`) and ("start" | "end", text,
    `time.perf_counter()`) for each (`events`)."""

    def __init__(self, engine: TtsEngine) -> None:
        self.engine = engine
        self.name, self.voices, self.sample_rate = engine.name, engine.voices, engine.sample_rate
        self.texts: list[str] = []
        self.events: list[tuple[str, str, float]] = []

    async def synthesize(self, text: str, voice: str | None = None) -> AsyncIterator[AudioChunk]:
        self.texts.append(text)
        self.events.append(("start", text, time.perf_counter()))
        async for chunk in self.engine.synthesize(text, voice):
            yield chunk
        self.events.append(("end", text, time.perf_counter()))
