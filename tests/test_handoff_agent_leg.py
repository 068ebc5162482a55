"""A call's agent leg with the real models over an in-memory Twilio line: hold music and queue position while
waiting, the agent's voice bridged in (right channel) with the bot deaf and silent, hand back, requeue, hang-up.

The handoff side is a scripted `HandoffPort` here (the port is the pipeline's boundary); the same pipeline on
the real handoff service and Redis bridge is covered by tests/test_agent_desk.py and the browser test.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from bot.dialogue import DialogueEngine
from bot.nlu import NLUEngine
from callpilot.brains import build_dialogue
from callpilot.settings import Settings
from callpilot.voice import line_for
from tests.agent_leg_fixtures import ask_for_a_human, fresh, handed_over
from voice_gateway.call_log import LifecycleKind
from voice_gateway.pipeline import PipelineSettings, VoiceServices
from voice_gateway.pipeline.agent_leg import Leg
from voice_gateway.pipeline.agent_leg_phrases import NO_AGENT_TEXT, queue_announcement
from voice_gateway.pipeline.handoff_port import AgentGone, AgentJoined, BackToBot, Hold, InQueue, LegUpdate, NoAgent
from voice_gateway.testing import PhoneCall, ScriptedHandoff, dominant_hz, rms, tone_frames, tts_speech

RATE = 8000
FRAME = RATE // 50 * 2
ROOT = Path(__file__).resolve().parent.parent


def test_queued_caller_hears_position_then_hold_music_and_the_bot_is_deaf(models: tuple[VoiceServices, DialogueEngine]) -> None:
    async def go() -> None:
        port = ScriptedHandoff()
        services = fresh(models, port)
        call = PhoneCall(services, port)
        await ask_for_a_human(call, services)
        call_id, decision = port.requests[0]
        assert decision.reason == "caller_asked" and call.pipeline.leg is not None
        assert call.pipeline.leg.state is Leg.QUEUED
        port.pushed.put_nowait(InQueue(position=2, expected_wait_s=90))
        await call.until(lambda: any("number 2 in the queue" in s for s in call.bot_said()))
        await call.until(lambda: not call.pipeline.bot_busy())
        hold = await call.feed(seconds=2.0)
        windows = [hold[i : i + 3200] for i in range(0, len(hold) - 3199, 3200)]  # 200 ms each
        assert windows and all(rms(w) > 300 for w in windows), [round(rms(w)) for w in windows]
        turns = call.caller_turns()
        heard = await call.feed(await tts_speech(services, "where is my order"), seconds=4.0)
        assert call.caller_turns() == turns, "the bot listened while the caller was queued"
        assert rms(heard) > 300  # hold music went on
        assert port.heard_by_agent == b""  # nobody is connected yet
        await call.line.hang_up()
        assert port.hung_up == [call_id]

    asyncio.run(go())


def test_an_unknown_wait_is_not_announced() -> None:
    assert queue_announcement(1, None) == "You are next in line."
    assert queue_announcement(3, 200) == "You are number 3 in the queue. The expected wait is about 3 minutes."


def test_nobody_logged_in_gives_the_caller_back_to_the_bot_at_once(models: tuple[VoiceServices, DialogueEngine]) -> None:
    async def go() -> None:
        port = ScriptedHandoff()
        services = fresh(models, port)
        call = PhoneCall(services, port)
        await ask_for_a_human(call, services)
        assert call.pipeline.leg is not None and call.pipeline.leg.state is Leg.QUEUED
        port.pushed.put_nowait(BackToBot("no orders agent is logged in"))  # what the service answers at once
        await call.until(lambda: any(NO_AGENT_TEXT in s for s in call.bot_said()))
        await call.until(lambda: call.pipeline.leg is not None and call.pipeline.leg.state is Leg.BOT)
        assert not any("expected wait" in s or "in line" in s for s in call.bot_said())
        await call.until(lambda: not call.pipeline.bot_busy())
        turns = call.caller_turns()
        await call.feed(await tts_speech(services, "what are your opening hours"), seconds=4.0)
        assert call.caller_turns() > turns, "the bot did not listen again"
        await call.line.hang_up()

    asyncio.run(go())


async def agent_on_the_line(models: tuple[VoiceServices, DialogueEngine],
                            ) -> tuple[ScriptedHandoff, VoiceServices, PhoneCall]:
    """A call that asked for a person and has agent a1 (Alice) on the line."""
    port = ScriptedHandoff()
    services = fresh(models, port)
    call = PhoneCall(services, port)
    await ask_for_a_human(call, services)
    await call.until(lambda: not call.pipeline.bot_busy())
    port.pushed.put_nowait(AgentJoined("a1", "Alice"))
    await call.feed(seconds=0.2)
    assert call.pipeline.leg is not None and call.pipeline.leg.state is Leg.AGENT
    return port, services, call


def test_agent_voice_reaches_the_caller_the_bot_stays_silent_then_takes_the_call_back(
    models: tuple[VoiceServices, DialogueEngine],
) -> None:
    async def go() -> None:
        port, services, call = await agent_on_the_line(models)
        assert call.pipeline.leg is not None
        said, turns = len(call.bot_said()), call.caller_turns()
        caller_words = await tts_speech(services, "where is my order four eight two one five")
        heard = await call.feed(caller_words, seconds=4.0, agent=tone_frames(4.0))
        assert abs(dominant_hz(heard[len(heard) // 4 :]) - 300) < 15  # the agent's tone, not the bot or hold music
        assert rms(heard[len(heard) // 4 :]) > 1000
        assert call.caller_turns() == turns and len(call.bot_said()) == said, "the bot spoke or listened"
        assert rms(bytes(port.heard_by_agent)) > 300  # the caller's words went to the agent (16 kHz)
        assert len(port.heard_by_agent) >= len(caller_words) * 2 * 0.9
        assert call.pipeline.call is not None and call.pipeline.call.recording is not None
        recorder = call.pipeline.call.recording.recorder
        right = np.frombuffer(recorder.stereo_pcm(), "<i2").reshape(-1, 2)[:, 1].astype("<i2").tobytes()
        assert abs(dominant_hz(right[-RATE * 2 * 2 :]) - 300) < 15  # the agent on the recording's right channel

        port.agent_audio.put_nowait(Hold(True))
        held = await call.feed(seconds=1.0, agent=tone_frames(1.0))
        assert call.pipeline.leg.state is Leg.HELD and abs(dominant_hz(held[len(held) // 2 :]) - 300) > 15

        port.pushed.put_nowait(AgentGone("hand_back", requeued=False))
        await call.until(lambda: any("back with the virtual assistant" in s for s in call.bot_said()))
        assert call.pipeline.leg.state is Leg.BOT
        await call.until(call.quiet)
        await call.feed(await tts_speech(services, "where is my order 48215"), seconds=3.0)
        await call.until(lambda: call.caller_turns() > turns)  # the bot listens again
        assert engine_mode(models, call) == "speech"
        await call.line.hang_up()
        assert port.hung_up == []  # the bot had the call when it ended: nothing to tell the handoff

    asyncio.run(go())


def test_a_queue_position_that_arrives_after_the_agent_joined_is_ignored(
    models: tuple[VoiceServices, DialogueEngine],
) -> None:
    """A router works from a view a moment behind: its position for a call an agent has just taken must not
    take the call from the agent (the 30-minute soak: "position while agent", and the bot took the call back)."""
    async def go() -> None:
        port, _, call = await agent_on_the_line(models)
        said = len(call.bot_said())
        port.pushed.put_nowait(InQueue(position=3, expected_wait_s=60))
        heard = await call.feed(seconds=1.0, agent=tone_frames(1.0))
        assert call.pipeline.leg is not None and call.pipeline.leg.state is Leg.AGENT
        assert abs(dominant_hz(heard[len(heard) // 2 :]) - 300) < 15  # still the agent's voice
        assert len(call.bot_said()) == said, "the bot spoke"
        await call.line.hang_up()

    asyncio.run(go())


def engine_mode(models: tuple[VoiceServices, DialogueEngine], call: PhoneCall) -> str:
    state = call.pipeline.state
    assert state is not None
    conversation = models[1].state_of(state.call_id)
    assert conversation is not None
    return conversation.mode


def test_agent_disconnect_requeues_with_hold_music_and_agent_hang_up_ends_the_call(
    models: tuple[VoiceServices, DialogueEngine],
) -> None:
    async def go() -> None:
        port, services, call = await agent_on_the_line(models)
        port.pushed.put_nowait(AgentJoined("a1", "Alice"))  # told twice (state read + message): still talking
        await call.feed(seconds=0.5, agent=tone_frames(0.5))
        assert call.pipeline.leg is not None and call.pipeline.leg.state is Leg.AGENT
        port.pushed.put_nowait(AgentGone("disconnected", requeued=True))
        heard = await call.feed(seconds=1.5)
        assert call.pipeline.leg is not None and call.pipeline.leg.state is Leg.QUEUED
        assert rms(heard[len(heard) // 3 :]) > 300  # hold music again, never silence
        port.pushed.put_nowait(AgentJoined("a2", "Bob"))
        await call.feed(seconds=0.5, agent=tone_frames(0.5))
        port.pushed.put_nowait(AgentGone("hangup", requeued=False))
        await call.feed(seconds=1.0)
        assert call.line.closed and call.pipeline.leg.state is Leg.ENDED
        stages = [e.data.get("stage") for e in services.call_log.events if e.kind is LifecycleKind.HANDOFF]
        assert stages.count("agent_joined") == 2 and "agent_left" in stages

    asyncio.run(go())


def test_a_voice_call_goes_on_across_a_model_swap(models: tuple[VoiceServices, DialogueEngine],
                                                 nlu_engine: NLUEngine) -> None:
    """The trainer activates a model while a caller talks: the turn in progress finishes, the next one is answered
    by the new parts, the call never errs."""
    _, engine = models
    new = build_dialogue(Settings(data_dir=ROOT / "nlu_data"), nlu_engine)  # the newly trained model's parts

    async def go() -> None:
        services = fresh(models, ScriptedHandoff())
        call = PhoneCall(services)
        await call.feed(seconds=1.0)
        await call.until(call.quiet)  # the greeting has played

        def activate() -> None:  # what the trainer's activation does in every engine of the process
            with engine.parts_lock.swap():
                engine.take_parts(new)

        said = len(call.bot_said())
        question = await tts_speech(services, "what are your opening hours")
        half = len(question) // 2 // FRAME * FRAME  # on a frame boundary
        await call.feed(question[:half])
        activate()  # mid-sentence: the caller is still talking when the new model goes live
        await call.feed(question[half:], seconds=4.0)
        await call.until(lambda: len(call.bot_said()) > said)
        assert engine.brain is new.brain  # the new model's parts answer from now on
        assert any("Monday" in text for text in call.bot_said()[said:]), call.bot_said()
        assert not call.line.closed

    asyncio.run(go())


def test_overflow_offers_a_callback_and_hangs_up(models: tuple[VoiceServices, DialogueEngine]) -> None:
    async def go() -> None:
        port = ScriptedHandoff()
        services = fresh(models, port)
        call = PhoneCall(services, port)
        await ask_for_a_human(call, services)
        port.pushed.put_nowait(NoAgent("callback", None))
        await call.until(lambda: call.line.closed)
        assert any("call you back" in s for s in call.bot_said())

    asyncio.run(go())


def test_the_dialled_number_picks_its_line_and_the_line_its_greeting(
    models: tuple[VoiceServices, DialogueEngine]
) -> None:
    settings = Settings.load(None, {}, asr_engine="whisper-base", lines={
        "4008001234": {"name": "400 hotline", "language": "zh"}, "+18005550199": {"name": "US line", "language": "en"}})

    async def go(called: str) -> dict[str, object]:
        services = dataclasses.replace(fresh(models, ScriptedHandoff()), line_for=line_for(settings))
        call = PhoneCall(services, called=called)
        await call.until(lambda: len(call.bot_said()) >= 2)  # the recording announcement, then the greeting
        return dict(next(e for e in services.call_log.events if e.kind is LifecycleKind.STARTED).data)

    go_started = asyncio.run(go("sip:18005550199@trunk.example"))
    assert (go_started["line"], go_started["called"]) == ("US line", "+18005550199")
    assert "line" not in asyncio.run(go("+14155550000"))  # a number with no line of its own: the defaults
    line = line_for(settings)("+864008001234")  # the 400 number with the country code in front
    assert line is not None and (line.name, line.language) == ("400 hotline", "zh")
    _, engine = models
    greeting = engine.start("zh-line-call", None, "voice", line.language)  # what the pipeline starts it with
    assert "您好" in greeting.text and greeting.language == "zh"
    assert engine.state_of("zh-line-call").language == "zh"  # no language menu on a Chinese line


def test_an_agents_transfer_to_an_outside_number_is_said_then_carried_out(
    models: tuple[VoiceServices, DialogueEngine]
) -> None:
    async def go() -> None:
        port, services, call = await agent_on_the_line(models)
        await call.feed(seconds=0.5, agent=tone_frames(0.5))
        port.pushed.put_nowait(AgentGone("transfer_out", requeued=False, target="+8613812345678"))
        await call.until(lambda: call.line.closed)
        assert any("transferring your call to + 8 6 1 3" in s for s in call.bot_said())
        assert call.line.server.transfer_target == "+8613812345678"
        stages = [e.data.get("stage") for e in services.call_log.events if e.kind is LifecycleKind.HANDOFF]
        assert "transfer_out" in stages

    asyncio.run(go())


def test_overflow_to_the_backup_number_says_so_then_transfers_the_call(
    models: tuple[VoiceServices, DialogueEngine]
) -> None:
    async def go() -> None:
        port = ScriptedHandoff()
        services = fresh(models, port)
        call = PhoneCall(services, port)
        await ask_for_a_human(call, services)
        port.pushed.put_nowait(NoAgent("transfer", "+18005550100"))
        await call.until(lambda: call.line.closed)
        assert any("transferring your call" in s for s in call.bot_said())
        assert call.line.server.transfer_target == "+18005550100"  # the transport sends the caller on

    asyncio.run(go())


def test_overflow_to_voicemail_records_the_message_after_the_tone(
    models: tuple[VoiceServices, DialogueEngine], tmp_path: Path
) -> None:
    async def go() -> None:
        port = ScriptedHandoff()
        services = dataclasses.replace(fresh(models, port), settings=PipelineSettings(recordings_dir=tmp_path))
        call = PhoneCall(services, port)
        await ask_for_a_human(call, services)
        port.pushed.put_nowait(NoAgent("voicemail", None))
        await call.until(lambda: any("leave a message" in s for s in call.bot_said()))
        tone = await call.feed(seconds=0.6)
        assert abs(dominant_hz(tone) - 1000) < 20  # the tone
        message = await tts_speech(services, "please call me back about my order")
        await call.feed(message, seconds=3.0)
        await call.line.hang_up()
        with wave.open(str(tmp_path / f"voicemail-{call.pipeline.state.call_id}.wav")) as saved:
            pcm = saved.readframes(saved.getnframes())
        assert rms(pcm) > 300 and len(pcm) >= len(message)
        assert port.hung_up == []  # nothing to tell the handoff: the queue already gave up

    asyncio.run(go())


class StallingHandoff(ScriptedHandoff):
    """A handoff side whose agent-audio subscription takes for ever to close (an unsubscribe stalled on a busy
    Redis: the real bridge closes it shielded from cancellation, as this does)."""

    async def from_agent(self, call_id: str) -> AsyncIterator[bytes | Hold]:
        try:
            while True:
                yield await self.agent_audio.get()
        finally:
            await asyncio.shield(asyncio.sleep(3600))


async def agent_hangs_up_on_a_stalling_bridge(models: tuple[VoiceServices, DialogueEngine]
                                              ) -> tuple[PhoneCall, VoiceServices]:
    """A caller handed to Alice, who talks, then hangs up (her audio listener slow to close)."""
    port = StallingHandoff()
    call, services = await handed_over(models, port)
    await call.until(lambda: not call.pipeline.bot_busy())
    port.pushed.put_nowait(AgentJoined("a1", "Alice"))
    await call.feed(seconds=0.5, agent=tone_frames(0.5))
    port.pushed.put_nowait(AgentGone("hangup", requeued=False))
    return call, services


def test_an_agents_hang_up_ends_the_call_even_if_the_agents_audio_is_slow_to_stop(
    models: tuple[VoiceServices, DialogueEngine],
) -> None:
    """A 40-line soak had a call whose agent hung up and wrapped up while its caller stayed on for 150 s, with
    no `agent_left` in its log: the leg waited for the agent's audio listener to finish closing."""
    async def go() -> None:
        call, services = await agent_hangs_up_on_a_stalling_bridge(models)
        await call.feed(seconds=0.5)
        await asyncio.sleep(1.5)  # real time: the leg waits a moment (STOP_WAIT_S) for the listener to stop
        await call.feed(seconds=1.0)
        assert call.line.closed and call.pipeline.leg is not None and call.pipeline.leg.state is Leg.ENDED
        stages = [e.data.get("stage") for e in services.call_log.events if e.kind is LifecycleKind.HANDOFF]
        assert "agent_left" in stages

    asyncio.run(go())


def test_the_caller_hanging_up_while_the_agent_leaves_is_no_error(
    models: tuple[VoiceServices, DialogueEngine], caplog: pytest.LogCaptureFixture,
) -> None:
    """The agent hangs up and, while the leg stops the agent's audio, the caller hangs up too (a soak logged
    "handoff updates failed ... agent_hung_up while ended" for this)."""
    async def go() -> None:
        call, _ = await agent_hangs_up_on_a_stalling_bridge(models)
        await call.feed(seconds=0.1)
        await call.line.hang_up()
        await asyncio.sleep(1.5)
        assert call.pipeline.leg is not None and call.pipeline.leg.state is Leg.ENDED

    with caplog.at_level(logging.INFO):
        asyncio.run(go())
    assert not [r for r in caplog.records if "handoff updates failed" in r.getMessage()]


class DroppingHandoff(ScriptedHandoff):
    """A handoff side whose update subscription stops under the call once (ends, or a stray cancellation out of
    the Redis client), the next one starting with where the call stands: a 40-line soak's callers stayed on hold
    after their agent hung up because the leg stopped following after such a stop, with nothing logged."""

    def __init__(self, how: str) -> None:
        super().__init__()
        self.how, self.subscriptions = how, 0

    async def updates(self, call_id: str) -> AsyncIterator[LegUpdate]:
        self.subscriptions += 1
        if self.subscriptions == 1:
            yield AgentJoined("a1", "Alice")
            await asyncio.sleep(0.1)
            if self.how == "cancelled":
                raise asyncio.CancelledError
            return
        yield AgentJoined("a1", "Alice")  # where the call stands ... then the agent hangs up
        while True:
            yield await self.pushed.get()


@pytest.mark.parametrize("how", ["ended", "cancelled"])
def test_updates_that_stop_under_a_connected_call_are_followed_again(
    models: tuple[VoiceServices, DialogueEngine], how: str,
) -> None:
    async def go() -> None:
        port = DroppingHandoff(how)
        call, services = await handed_over(models, port)
        await call.feed(seconds=0.5, agent=tone_frames(0.5))
        await asyncio.sleep(0.5)  # real time: the subscription stops and is made again
        assert port.subscriptions == 2 and call.pipeline.leg is not None and call.pipeline.leg.state is Leg.AGENT
        port.pushed.put_nowait(AgentGone("hangup", requeued=False))
        await call.feed(seconds=1.0)
        assert call.line.closed and call.pipeline.leg.state is Leg.ENDED
        stages = [e.data.get("stage") for e in services.call_log.events if e.kind is LifecycleKind.HANDOFF]
        assert stages.count("agent_joined") == 1 and "agent_left" in stages  # told twice, joined once

    asyncio.run(go())


class SilentHandoff(ScriptedHandoff):
    """Updates that end at once every time (the call's record lost its outcome)."""

    async def updates(self, call_id: str) -> AsyncIterator[LegUpdate]:
        for _ in ():
            yield _


def test_updates_that_keep_stopping_give_the_caller_back_to_the_bot(
    models: tuple[VoiceServices, DialogueEngine],
) -> None:
    async def go() -> None:
        port = SilentHandoff()
        call, services = await handed_over(models, port)
        await asyncio.sleep(2.0)  # real time: FOLLOW_TRIES tries, FOLLOW_AGAIN_S apart
        await call.feed(seconds=0.5)
        assert call.pipeline.leg is not None and call.pipeline.leg.state is Leg.BOT
        stages = [e.data.get("stage") for e in services.call_log.events if e.kind is LifecycleKind.HANDOFF]
        assert "back_to_bot" in stages

    asyncio.run(go())
