"""The disk fills up while a call is recorded: a real ENOSPC (the recording's temporary file is a link to
/dev/full, which refuses every write with "No space left on device"). The call goes on - the caller's next
question is answered - the failure is logged and counted, no partial file is left, and the call's end says it
was not recorded."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.dialogue import DialogueEngine
from bot.nlu import NLUEngine
from callpilot.brains import build_dialogue
from callpilot.settings import Settings
from voice_gateway.audio import resample_pcm16
from voice_gateway.call_log import CallLog, LifecycleKind
from voice_gateway.pipeline import CallPipeline, PipelineSettings, VoiceServices, load_services
from voice_gateway.pipeline.observer import NullObserver
from voice_gateway.simulated_caller import InMemoryTwilioLine
from voice_gateway.transports import CallConnection

ROOT = Path(__file__).resolve().parent.parent
RATE = 8000
FRAME = RATE // 50 * 2


class Errors(NullObserver):
    def __init__(self) -> None:
        self.errors: list[tuple[str, str]] = []

    def on_error(self, call_id: str, where: str) -> None:
        self.errors.append((call_id, where))


@pytest.fixture(scope="module")
def models(nlu_engine: NLUEngine) -> Iterator[tuple[VoiceServices, DialogueEngine]]:
    engine = build_dialogue(Settings(data_dir=ROOT / "nlu_data"), nlu_engine)
    loaded = load_services(engine, tts_engine="hibari")
    yield loaded, engine
    loaded.close()


def test_a_full_disk_while_recording_loses_the_recording_not_the_call(
    models: tuple[VoiceServices, DialogueEngine], tmp_path: Path
) -> None:
    assert os.path.exists("/dev/full")
    services, _ = models
    observer = Errors()
    recordings = tmp_path / "recordings"
    services = dataclasses.replace(services, call_log=CallLog(None), observer=observer,
                                   settings=PipelineSettings(record_calls=True, recordings_dir=recordings))
    pipelines: list[CallPipeline] = []

    def new_handler(line: CallConnection) -> CallPipeline:
        pipelines.append(CallPipeline(line, services))
        return pipelines[0]

    line = InMemoryTwilioLine(new_handler)
    call_id = line.codec.call_sid
    recordings.mkdir(mode=0o700)
    (recordings / f".{call_id}.wav.part").symlink_to("/dev/full")  # the disk is full from the first write

    async def speech(text: str) -> bytes:
        chunks = [chunk async for chunk in services.tts.synthesize(text)]
        return resample_pcm16(b"".join(c.pcm for c in chunks), chunks[0].sample_rate, RATE)

    async def feed(pcm: bytes, seconds: float) -> None:
        audio = pcm + bytes(max(0, int(seconds * RATE) * 2 - len(pcm)))
        for i in range(0, len(audio) - FRAME + 1, FRAME):
            line.send_audio(audio[i:i + FRAME])
            await line.flush()
            for _ in range(3):
                await asyncio.sleep(0)
            line.events()  # what the caller hears is not the point here

    def bot_said() -> list[str]:
        return [str(e.data.get("planned") or e.data["text"]) for e in services.call_log.events
                if e.kind is LifecycleKind.TURN and e.data.get("speaker") == "bot"]

    async def call() -> None:
        await feed(b"", 8.0)  # the greeting plays; the first spool (about 2 s of audio) hits the full disk
        assert (call_id, "recording") in observer.errors
        said = len(bot_said())
        await feed(await speech("what are your opening hours"), 8.0)
        for _ in range(100):
            if len(bot_said()) > said:
                break
            await feed(b"", 0.2)
        assert len(bot_said()) > said, "the call stopped answering after the disk filled up"
        await line.hang_up()

    asyncio.run(call())
    ended = next(e for e in services.call_log.events if e.kind is LifecycleKind.ENDED)
    assert not ended.data.get("recording"), ended.data  # the end says: not recorded
    assert list(recordings.iterdir()) == []  # the temporary file (here the link) is gone; nothing half-written
    assert observer.errors.count((call_id, "recording")) == 1  # counted once, not on every frame
