"""The browser softphone's protocol (/phone/ws) end to end from Python: a real `callpilot run`, 16 kHz PCM16
frames in, the bot's audio, marks, transcripts and status out; keys walk the IVR."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.voice_helpers import VoiceServer, silence, speech, voice_server
from voice_gateway.audio import FrameBuffer, rms

RATE = 16000
FRAME = RATE // 50 * 2  # 20 ms of PCM16
SPEED = 4.0  # frames go out four times faster than real time (the server's clock is the audio it receives)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VoiceServer]:
    with voice_server(tmp_path_factory.mktemp("softphone")) as running:
        yield running


@dataclass
class Browser:
    """What the page would have received: audio, transcripts (final ones), statuses, marks echoed."""

    audio: bytearray = field(default_factory=bytearray)
    transcripts: list[tuple[str, str]] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    marks: list[str] = field(default_factory=list)
    hung_up: bool = False

    def said(self, speaker: str) -> str:
        return " ".join(text for who, text in self.transcripts if who == speaker).lower()

    def loud_seconds(self) -> float:
        return float(sum(rms(frame) > 100 for frame in FrameBuffer(FRAME).push(bytes(self.audio))) * 0.02)


async def _read(websocket: ClientConnection, browser: Browser) -> None:
    try:
        async for message in websocket:
            if isinstance(message, bytes):
                browser.audio += message
                continue
            data = json.loads(message)
            if data["type"] == "mark":
                browser.marks.append(data["name"])
                await websocket.send(json.dumps({"type": "mark", "name": data["name"]}))  # played at once
            elif data["type"] == "transcript" and data["final"]:
                browser.transcripts.append((data["speaker"], data["text"]))
            elif data["type"] == "status":
                browser.statuses.append(data["status"])
            elif data["type"] == "hangup":
                browser.hung_up = True
    except ConnectionClosed:
        pass


def call(server: VoiceServer, audio: bytes, keys: dict[int, str] | None = None, *,
         turn_by_turn: bool = False) -> Browser:
    """Dial /phone/ws, send `audio` in 20 ms frames (keys before the given frame numbers), then hang up. Frames go
    out faster than real time while the bot's speech is synthesised in real time, so with `turn_by_turn` the caller
    waits like a person: silence goes first until the greeting has played to its last sentence's mark, and after
    `audio` until the bot has answered and played that too (then 1 s more each time)."""
    keys = keys or {}

    async def run() -> Browser:
        browser = Browser()
        ws_url = server.url.replace("http://", "ws://") + "/phone/ws"
        async with connect(ws_url) as websocket:
            await websocket.send(json.dumps({"type": "start", "caller": "python-test", "sampleRate": RATE}))
            reader = asyncio.create_task(_read(websocket, browser))
            loop = asyncio.get_running_loop()

            async def until_bot_done(lines: int) -> None:
                """Silence until the bot has said more than `lines` lines and played all it said, then 1 s."""
                deadline, extra = loop.time() + 30.0, 50
                while loop.time() < deadline and extra > 0:
                    await websocket.send(bytes(FRAME))
                    await asyncio.sleep(0.02 / SPEED)
                    said = [text for who, text in browser.transcripts if who == "bot"]
                    extra -= len(said) > lines and len(browser.marks) >= len(said)

            if turn_by_turn:
                await until_bot_done(0)
            started, lines = loop.time(), len(browser.marks)
            for index in range(len(audio) // FRAME):
                if index in keys:
                    await websocket.send(json.dumps({"type": "dtmf", "digit": keys[index]}))
                await websocket.send(audio[index * FRAME : (index + 1) * FRAME])
                await asyncio.sleep(max(0.0, started + (index + 1) * 0.02 / SPEED - loop.time()))
            if turn_by_turn:
                await until_bot_done(lines)
            await websocket.send(json.dumps({"type": "hangup"}))
            await asyncio.sleep(0.2)
            reader.cancel()
        return browser

    return asyncio.run(run())


def test_a_spoken_question_gets_a_spoken_answer_with_transcripts(server: VoiceServer) -> None:
    question = speech("what are your opening hours", RATE)
    browser = call(server, question + silence(1.0, RATE), turn_by_turn=True)
    assert "connected" in browser.statuses and "listening" not in browser.statuses  # nobody cut the bot off
    assert "brightline" in browser.said("bot")  # the greeting
    assert "opening hours" in browser.said("caller"), browser.transcripts
    assert "monday to saturday" in browser.said("bot"), browser.transcripts
    # The answer came after the question in the transcript, and as audio at 16 kHz.
    order = [who for who, _ in browser.transcripts]
    assert order.index("caller") < len(order) - 1 - order[::-1].index("bot")
    assert browser.loud_seconds() > 5.0 and browser.marks


def test_keys_reach_the_ivr(server: VoiceServer) -> None:
    frames_per_s = 50
    browser = call(server, silence(9.0, RATE), keys={1 * frames_per_s: "5", 4 * frames_per_s: "1"})
    bot = browser.said("bot")
    assert "for our opening hours, press 1" in bot, browser.transcripts
    assert "monday to saturday" in bot, browser.transcripts
    assert "listening" in browser.statuses  # the first key cut the greeting short (barge-in)


def test_an_unsupported_sample_rate_closes_with_1003(server: VoiceServer) -> None:
    async def run() -> int | None:
        async with connect(server.url.replace("http://", "ws://") + "/phone/ws") as websocket:
            await websocket.send(json.dumps({"type": "start", "sampleRate": 11025}))
            try:
                while True:
                    await asyncio.wait_for(websocket.recv(), 10)
            except ConnectionClosed as closed:
                return closed.rcvd.code if closed.rcvd else None

    assert asyncio.run(run()) == 1003  # RFC 6455 "unsupported data"
