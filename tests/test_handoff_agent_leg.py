"""A call's agent leg with the real models over an in-memory Twilio line: hold music and queue position while
waiting, the agent's voice bridged in (right channel) with the bot deaf and silent, hand back, requeue, hang-up.

The handoff side is a scripted `HandoffPort` here (the port is the pipeline's boundary); the same pipeline on
the real handoff service and Redis bridge is covered by tests/test_agent_desk.py and the browser test.
"""

from __future__ import annotations

import asyncio
import dataclasses
import wave
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest

from bot.dialogue import DialogueEngine, HandoffDecision
from bot.nlu import NLUEngine
from callpilot.brains import build_dialogue
from callpilot.handoff_port import bot_resumer
from callpilot.settings import Settings
from callpilot.voice import line_for
from voice_gateway.call_log import CallLog, LifecycleKind
from voice_gateway.events import AudioOut
from voice_gateway.pipeline import CallPipeline, PipelineSettings, VoiceServices, load_services
from voice_gateway.pipeline.agent_leg import Leg
from voice_gateway.pipeline.handoff_port import AgentGone, AgentJoined, BackToBot, Hold, InQueue, LegUpdate, NoAgent
from voice_gateway.pipeline.leg_words import NO_AGENT_TEXT, queue_announcement
from voice_gateway.simulated_caller import InMemoryTwilioLine
from voice_gateway.transports import CallConnection
from voice_gateway.tts.formats import resample_pcm16

RATE = 8000
FRAME = RATE // 50 * 2
ROOT = Path(__file__).resolve().parent.parent


class ScriptedPort:
    """The handoff side as a test plays it: updates and agent audio are pushed by the test."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, HandoffDecision]] = []
        self.heard_by_agent = bytearray()
        self.hung_up: list[str] = []
        self.pushed: asyncio.Queue[LegUpdate] = asyncio.Queue()
        self.agent_audio: asyncio.Queue[bytes | Hold] = asyncio.Queue()
        self.keys_to_agent: list[str] = []
        self.callbacks: list[str] = []
        self.said: list[tuple[str, str]] = []
        self.beats = 0  # the caller side saying it is still there

    async def request(self, call_id: str, decision: HandoffDecision, *, language: str) -> None:
        self.requests.append((call_id, decision))

    async def updates(self, call_id: str) -> AsyncIterator[LegUpdate]:
        while True:
            yield await self.pushed.get()

    async def caller_hung_up(self, call_id: str) -> None:
        self.hung_up.append(call_id)

    async def send_to_agent(self, call_id: str, pcm16: bytes) -> None:
        self.heard_by_agent += pcm16

    async def from_agent(self, call_id: str) -> AsyncIterator[bytes | Hold]:
        while True:
            yield await self.agent_audio.get()

    async def key_to_agent(self, call_id: str, digit: str) -> None:
        self.keys_to_agent.append(digit)

    async def request_callback(self, call_id: str) -> str:
        self.callbacks.append(call_id)
        return "+16175550142"

    async def transcript_line(self, call_id: str, speaker: str, text: str) -> None:
        self.said.append((speaker, text))

    async def caller_here(self, call_id: str) -> None:
        self.beats += 1


@pytest.fixture(scope="module")
def models(nlu_engine: NLUEngine) -> Iterator[tuple[VoiceServices, DialogueEngine]]:
    engine = build_dialogue(Settings(data_dir=ROOT / "nlu_data"), nlu_engine)
    loaded = load_services(engine, tts_engine="hibari")
    yield loaded, engine
    loaded.close()


async def speech(services: VoiceServices, text: str) -> bytes:
    """Caller speech: the offline TTS voice at 8 kHz."""
    chunks = [chunk async for chunk in services.tts.synthesize(text)]
    return resample_pcm16(b"".join(c.pcm for c in chunks), chunks[0].sample_rate, RATE)


def rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], "<i2").astype(np.float64)
    return float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0


def dominant_hz(pcm: bytes, rate: int = RATE) -> float:
    samples = np.frombuffer(pcm, "<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[int(np.argmax(spectrum))])


def agent_tone(seconds: float, hz: float = 300.0) -> list[bytes]:
    """The agent 'speaking': a steady tone at 16 kHz in 20 ms frames, unlike anything the bot or hold music plays."""
    t = np.arange(int(seconds * 16000)) / 16000
    pcm = (0.3 * np.sin(2 * np.pi * hz * t) * 32767).astype("<i2").tobytes()
    return [pcm[i : i + 640] for i in range(0, len(pcm), 640)]


class Call:
    """One call in audio time: the test feeds caller audio frame by frame and reads what the caller heard."""

    def __init__(self, services: VoiceServices, port: ScriptedPort | None = None, *, called: str = "") -> None:
        self.port = port or ScriptedPort()
        self.pipelines: list[CallPipeline] = []
        self.heard = bytearray()  # what the caller heard, one entry per caller frame (silence if nothing came)

        def new_handler(line: CallConnection) -> CallPipeline:
            self.pipelines.append(CallPipeline(line, services))
            return self.pipelines[0]

        self.line = InMemoryTwilioLine(new_handler, called=called)

    async def agent_says(self, frame: bytes) -> None:
        """One 20 ms frame of the agent's voice (16 kHz) on its way to the caller."""
        self.port.agent_audio.put_nowait(frame)

    @property
    def pipeline(self) -> CallPipeline:
        return self.pipelines[0]

    async def feed(self, pcm: bytes = b"", *, seconds: float = 0.0, agent: list[bytes] | None = None) -> bytes:
        """Send `pcm` then silence up to `seconds`; one agent frame (if any left) goes with each caller frame."""
        audio = pcm + bytes(max(0, int(seconds * RATE) * 2 - len(pcm)))
        start = len(self.heard)
        for i in range(0, len(audio) - FRAME + 1, FRAME):
            if agent:
                await self.agent_says(agent.pop(0))
            self.line.send_audio(audio[i : i + FRAME])
            await self.line.flush()
            for _ in range(3):
                await asyncio.sleep(0)  # the leg's tasks (updates, agent audio) take their turn
            got = b"".join(e.pcm for e in self.line.events() if isinstance(e, AudioOut))
            self.heard += got.ljust(FRAME, b"\x00") if len(got) <= FRAME else got
            if self.line.closed:
                break
        return bytes(self.heard[start:])

    async def until(self, done: object, *, limit_s: float = 60.0) -> None:
        """Feed silence until `done()` is true, at most ~10x faster than real time (TTS needs real time to run)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit_s
        while loop.time() < deadline:
            if done():  # type: ignore[operator]
                return
            await self.feed(seconds=0.1)
            await asyncio.sleep(0.01)
        leg = self.pipeline.leg
        raise AssertionError(
            f"not done after {limit_s} s; leg {leg.state if leg else None}, "
            f"phase {self.pipeline.state.phase if self.pipeline.state else None}, bot said {self.bot_said()}"
        )

    def bot_said(self) -> list[str]:
        log = self.pipeline.services.call_log.events
        return [str(e.data["text"]) for e in log if e.kind is LifecycleKind.TURN and e.data.get("speaker") == "bot"]

    def caller_turns(self) -> int:
        """The caller's turns with the bot (lines said to an agent, `leg: agent`, are not turns)."""
        log = self.pipeline.services.call_log.events
        return sum(1 for e in log if e.kind is LifecycleKind.TURN and e.data.get("speaker") == "caller"
                   and e.data.get("leg") != "agent")

    def quiet(self) -> bool:
        state = self.pipeline.state
        return state is not None and state.phase.value == "listening"


def fresh(models: tuple[VoiceServices, DialogueEngine], port: ScriptedPort) -> VoiceServices:
    services, engine = models
    return dataclasses.replace(
        # The agent leg's transcription is tested end to end elsewhere (tests/test_handoff_bridge_call.py, the
        # browser floor test): these calls run faster than real time, where two more ASR streams crowd the loop.
        services, call_log=CallLog(None), settings=PipelineSettings(record_calls=True, agent_transcript=False),
        handoff=port, resume_bot=bot_resumer(engine),
    )


async def ask_for_a_human(call: Call, services: VoiceServices) -> None:
    await call.feed(seconds=1.0)
    await call.until(call.quiet)  # the greeting has played
    await call.feed(await speech(services, "I want to talk to a human agent please"), seconds=4.0)
    await call.until(lambda: call.pipeline.leg is not None and call.pipeline.leg.state is not Leg.BOT)


def test_queued_caller_hears_position_then_hold_music_and_the_bot_is_deaf(models: tuple[VoiceServices, DialogueEngine]) -> None:
    async def go() -> None:
        port = ScriptedPort()
        services = fresh(models, port)
        call = Call(services, port)
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
        heard = await call.feed(await speech(services, "where is my order"), seconds=4.0)
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
        port = ScriptedPort()
        services = fresh(models, port)
        call = Call(services, port)
        await ask_for_a_human(call, services)
        assert call.pipeline.leg is not None and call.pipeline.leg.state is Leg.QUEUED
        port.pushed.put_nowait(BackToBot("no orders agent is logged in"))  # what the service answers at once
        await call.until(lambda: any(NO_AGENT_TEXT in s for s in call.bot_said()))
        await call.until(lambda: call.pipeline.leg is not None and call.pipeline.leg.state is Leg.BOT)
        assert not any("expected wait" in s or "in line" in s for s in call.bot_said())
        await call.until(lambda: not call.pipeline.bot_busy())
        turns = call.caller_turns()
        await call.feed(await speech(services, "what are your opening hours"), seconds=4.0)
        assert call.caller_turns() > turns, "the bot did not listen again"
        await call.line.hang_up()

    asyncio.run(go())


def test_agent_voice_reaches_the_caller_the_bot_stays_silent_then_takes_the_call_back(
    models: tuple[VoiceServices, DialogueEngine],
) -> None:
    async def go() -> None:
        port = ScriptedPort()
        services = fresh(models, port)
        call = Call(services, port)
        await ask_for_a_human(call, services)
        await call.until(lambda: not call.pipeline.bot_busy())
        port.pushed.put_nowait(AgentJoined("a1", "Alice"))
        await call.feed(seconds=0.2)
        assert call.pipeline.leg is not None and call.pipeline.leg.state is Leg.AGENT
        said, turns = len(call.bot_said()), call.caller_turns()
        caller_words = await speech(services, "where is my order four eight two one five")
        heard = await call.feed(caller_words, seconds=4.0, agent=agent_tone(4.0))
        assert abs(dominant_hz(heard[len(heard) // 4 :]) - 300) < 15  # the agent's tone, not the bot or hold music
        assert rms(heard[len(heard) // 4 :]) > 1000
        assert call.caller_turns() == turns and len(call.bot_said()) == said, "the bot spoke or listened"
        assert rms(bytes(port.heard_by_agent)) > 300  # the caller's words went to the agent (16 kHz)
        assert len(port.heard_by_agent) >= len(caller_words) * 2 * 0.9
        recorder = call.pipeline.recorder
        assert recorder is not None
        right = np.frombuffer(recorder.stereo_pcm(), "<i2").reshape(-1, 2)[:, 1].astype("<i2").tobytes()
        assert abs(dominant_hz(right[-RATE * 2 * 2 :]) - 300) < 15  # the agent on the recording's right channel

        port.agent_audio.put_nowait(Hold(True))
        held = await call.feed(seconds=1.0, agent=agent_tone(1.0))
        assert call.pipeline.leg.state is Leg.HELD and abs(dominant_hz(held[len(held) // 2 :]) - 300) > 15

        port.pushed.put_nowait(AgentGone("hand_back", requeued=False))
        await call.until(lambda: any("back with the virtual assistant" in s for s in call.bot_said()))
        assert call.pipeline.leg.state is Leg.BOT
        await call.until(call.quiet)
        await call.feed(await speech(services, "where is my order 48215"), seconds=3.0)
        await call.until(lambda: call.caller_turns() > turns)  # the bot listens again
        assert engine_mode(models, call) == "speech"
        await call.line.hang_up()
        assert port.hung_up == []  # the bot had the call when it ended: nothing to tell the handoff

    asyncio.run(go())


def engine_mode(models: tuple[VoiceServices, DialogueEngine], call: Call) -> str:
    state = call.pipeline.state
    assert state is not None
    conversation = models[1].state_of(state.call_id)
    assert conversation is not None
    return conversation.mode


def test_agent_disconnect_requeues_with_hold_music_and_agent_hang_up_ends_the_call(
    models: tuple[VoiceServices, DialogueEngine],
) -> None:
    async def go() -> None:
        port = ScriptedPort()
        services = fresh(models, port)
        call = Call(services, port)
        await ask_for_a_human(call, services)
        await call.until(lambda: not call.pipeline.bot_busy())
        port.pushed.put_nowait(AgentJoined("a1", "Alice"))
        port.pushed.put_nowait(AgentJoined("a1", "Alice"))  # told twice (state read + message): still talking
        await call.feed(seconds=0.5, agent=agent_tone(0.5))
        assert call.pipeline.leg is not None and call.pipeline.leg.state is Leg.AGENT
        port.pushed.put_nowait(AgentGone("disconnected", requeued=True))
        heard = await call.feed(seconds=1.5)
        assert call.pipeline.leg is not None and call.pipeline.leg.state is Leg.QUEUED
        assert rms(heard[len(heard) // 3 :]) > 300  # hold music again, never silence
        port.pushed.put_nowait(AgentJoined("a2", "Bob"))
        await call.feed(seconds=0.5, agent=agent_tone(0.5))
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
        services = fresh(models, ScriptedPort())
        call = Call(services)
        await call.feed(seconds=1.0)
        await call.until(call.quiet)  # the greeting has played

        def activate() -> None:  # what the trainer's activation does in every engine of the process
            with engine.parts_lock.swap():
                engine.take_parts(new)

        said = len(call.bot_said())
        question = await speech(services, "what are your opening hours")
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
        port = ScriptedPort()
        services = fresh(models, port)
        call = Call(services, port)
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
        services = dataclasses.replace(fresh(models, ScriptedPort()), line_for=line_for(settings))
        call = Call(services, called=called)
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
        port = ScriptedPort()
        services = fresh(models, port)
        call = Call(services, port)
        await ask_for_a_human(call, services)
        await call.until(lambda: not call.pipeline.bot_busy())
        port.pushed.put_nowait(AgentJoined("a1", "Alice"))
        await call.feed(seconds=0.5, agent=agent_tone(0.5))
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
        port = ScriptedPort()
        services = fresh(models, port)
        call = Call(services, port)
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
        port = ScriptedPort()
        services = dataclasses.replace(fresh(models, port), settings=PipelineSettings(recordings_dir=tmp_path))
        call = Call(services, port)
        await ask_for_a_human(call, services)
        port.pushed.put_nowait(NoAgent("voicemail", None))
        await call.until(lambda: any("leave a message" in s for s in call.bot_said()))
        tone = await call.feed(seconds=0.6)
        assert abs(dominant_hz(tone) - 1000) < 20  # the tone
        message = await speech(services, "please call me back about my order")
        await call.feed(message, seconds=3.0)
        await call.line.hang_up()
        with wave.open(str(tmp_path / f"voicemail-{call.pipeline.state.call_id}.wav")) as saved:
            pcm = saved.readframes(saved.getnframes())
        assert rms(pcm) > 300 and len(pcm) >= len(message)
        assert port.hung_up == []  # nothing to tell the handoff: the queue already gave up

    asyncio.run(go())
