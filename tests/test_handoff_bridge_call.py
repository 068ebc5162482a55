"""A real call on the real handoff: the pipeline (real models) through `ServicePort` to the `HandoffService`
and the Redis audio bridge (fakeredis), with the agent played by the service's agent API and the bridge.

The caller asks for a human and waits with hold music; the agent is rung, accepts and talks (its voice
reaches the caller, the caller's reaches the agent); then the agent's browser disappears and the call
goes back to the bot, which speaks and listens again. Another caller waits too long, hears the overflow
choices and presses 1 for a callback, which lands on the supervisor's callback list.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from pathlib import Path

import fakeredis
import numpy as np
import pytest
from fakeredis import aioredis as fake_aioredis

from bot.dialogue import DialogueEngine
from callpilot.handoff_port import ServicePort, bot_resumer
from handoff.bridge import AudioBridge, HoldSignal, SaidLine
from handoff.config import HandoffConfig
from handoff.events import Offer
from handoff.model import AgentStatus, HandoffState
from handoff.testing import make_floor
from voice_gateway.call_log import CallLog
from voice_gateway.pipeline import PipelineSettings, VoiceServices
from voice_gateway.pipeline.agent_leg import Leg
from voice_gateway.testing import PhoneCall, dominant_hz, rms, tone_frames, tts_speech


class BridgedCall(PhoneCall):
    """The agent's voice goes through the Redis bridge, as the desktop sends it."""

    bridge: AudioBridge
    call_id: str = ""

    async def agent_says(self, frame: bytes) -> None:
        await self.bridge.to_caller(self.call_id, frame)


def test_a_caller_talks_with_an_agent_through_the_service_and_goes_back_to_the_bot(
    models: tuple[VoiceServices, DialogueEngine], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def go() -> None:
        server = fakeredis.FakeServer()
        floor = make_floor(fake_aioredis.FakeRedis(server=server, decode_responses=True), tmp_path)
        bridge = AudioBridge(fake_aioredis.FakeRedis(server=server))
        await floor.service.start()  # with the router task, as in the app
        voice, engine = models
        services = dataclasses.replace(voice, call_log=CallLog(None), settings=PipelineSettings(),
                                       handoff=ServicePort(floor.service, bridge), resume_bot=bot_resumer(engine))
        (ann,) = await floor.staff(("Ann", {"orders": 3, "general": 3, "tech": 3, "returns": 3, "billing": 3}))
        offers: asyncio.Queue[Offer] = asyncio.Queue()

        async def desktop() -> None:
            async for update in floor.service.agent_events(ann.agent_id):
                if isinstance(update, Offer):
                    offers.put_nowait(update)

        watching = asyncio.create_task(desktop())
        await asyncio.sleep(0.05)
        call = BridgedCall(services)
        call.bridge = bridge
        await call.feed(seconds=1.0)
        await call.until(call.quiet)
        await call.feed(await tts_speech(services, "I want to talk to a human agent please"), seconds=3.0)
        await call.until(lambda: not offers.empty())
        offer = offers.get_nowait()
        state = call.pipeline.state
        assert state is not None and offer.context.call_id == state.call_id
        assert any("human" in line.text for line in offer.context.transcript)
        call.call_id = state.call_id
        await call.until(lambda: not call.pipeline.bot_busy())
        waiting = await call.feed(seconds=1.0)
        assert rms(waiting) > 300  # hold music while it rings

        async with bridge.listen(state.call_id, "agent") as to_agent:
            await floor.service.accept(ann.agent_id, offer.offer_id)
            await call.until(lambda: call.pipeline.leg is not None and call.pipeline.leg.state is Leg.AGENT)
            heard = await call.feed(await tts_speech(services, "hello is anybody there"), seconds=3.0,
                                    agent=tone_frames(3.0))
            caller_voice, said, waits = bytearray(), [], 0
            while True:
                try:
                    item = await asyncio.wait_for(to_agent.__aiter__().__anext__(), 0.5)
                except TimeoutError:
                    waits += 1
                    if said or waits > 40:
                        break
                    await call.feed(seconds=0.2)  # the line is decoded off the audio path: let it arrive
                    continue
                assert not isinstance(item, HoldSignal)
                if isinstance(item, SaidLine):
                    said.append(item)
                else:
                    caller_voice += item
        assert abs(dominant_hz(heard[len(heard) // 3 :]) - 300) < 15  # the agent, through Redis
        assert rms(bytes(caller_voice)) > 300  # the caller, through Redis
        assert said[0].speaker == "caller" and "anybody" in said[0].text.lower(), said  # and their words, transcribed

        await floor.service.agent_disconnected(ann.agent_id)  # the browser is gone; nobody else has the skill
        await call.until(lambda: call.pipeline.leg is not None and call.pipeline.leg.state is Leg.BOT)
        assert await floor.status(ann.agent_id) is AgentStatus.OFFLINE
        back_at = len(call.heard)  # the bot speaks again, not silence (its words need the TTS's real time first)
        await call.until(lambda: rms(bytes(call.heard[back_at:])[-16000:]) > 300)
        conversation = engine.state_of(state.call_id)
        assert conversation is not None and conversation.mode == "speech"
        await call.line.hang_up()
        watching.cancel()
        await floor.service.stop()

    asyncio.run(go())
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_hold_music_is_a_tone_pattern_not_silence() -> None:
    from voice_gateway.pipeline.hold import HoldMusic

    music = HoldMusic(8000)
    pcm = b"".join(music.frame() for _ in range(50 * 4))  # 4 s
    levels = [rms(pcm[i : i + 3200]) for i in range(0, len(pcm), 3200)]
    assert min(levels) > 300 and max(levels) < 8000  # audible and gentle, every 200 ms
    pitches = {round(dominant_hz(pcm[i : i + 6400])) for i in range(0, len(pcm), 6400)}
    assert len(pitches) >= 3  # a pattern of notes, not one beep
    assert np.frombuffer(pcm, "<i2").std() > 0


def test_a_caller_who_waited_too_long_asks_for_a_callback_by_key(
    models: tuple[VoiceServices, DialogueEngine], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The whole chain: the router's overflow with choices crosses Redis, the bot offers them, the caller
    presses 1, and the callback lands on the list the supervisor sees."""

    async def go() -> None:
        server = fakeredis.FakeServer()
        config = HandoffConfig.model_validate({"queues": {"general": {
            "max_wait_s": 60, "overflow": "voicemail", "overflow_choices": ["callback", "voicemail"],
            "overflow_choice_timeout_s": 10}}})
        floor = make_floor(fake_aioredis.FakeRedis(server=server, decode_responses=True), tmp_path, config=config)
        bridge = AudioBridge(fake_aioredis.FakeRedis(server=server))
        await floor.service.start()
        voice, engine = models
        services = dataclasses.replace(voice, call_log=CallLog(None), settings=PipelineSettings(),
                                       handoff=ServicePort(floor.service, bridge), resume_bot=bot_resumer(engine))
        await floor.staff(("Ann", {"general": 3}))
        await floor.service.set_status("ann", AgentStatus.AWAY)  # logged in, but nobody picks up
        call = PhoneCall(services)
        await call.feed(seconds=1.0)
        await call.until(call.quiet)
        await call.feed(await tts_speech(services, "I want to talk to a human agent please"), seconds=3.0)
        await call.until(lambda: any("next in line" in s for s in call.bot_said()))  # the position, from Redis
        floor.clock.advance(60)  # the router's clock: the maximum wait is over
        await call.until(lambda: any("Press 1 for a call back" in s for s in call.bot_said()))
        call.line.send_dtmf("1")
        await call.until(lambda: call.line.closed)
        state = call.pipeline.state
        assert state is not None
        view = await floor.service.snapshot()
        assert [(c.call_id, c.number, c.queue) for c in view.callbacks] == [(state.call_id, "+15550100000", "general")]
        record = await floor.service.calls.get(state.call_id)
        assert record.state is HandoffState.OVERFLOWED
        await floor.service.stop()

    asyncio.run(go())
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
