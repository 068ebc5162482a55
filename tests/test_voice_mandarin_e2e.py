"""A Mandarin call end to end: a 400 line (`languages: zh,en`) run as `callpilot run` with multilingual Whisper
base in a worker process, dialled over the real Twilio Media Streams websocket from a Chinese mobile. The bot
greets in Chinese; the caller speaks Mandarin (espeak-ng's Mandarin voice through 8 kHz mu-law) and is answered
in Chinese; the caller goes through the Chinese keypad menus to the order status, types the order number, hears
the status in Chinese, asks for a person with 0 and is handed over with a Chinese note for the agent; with no
agent signed in, the bot takes the caller back, in Chinese.

Not covered: what a Mandarin caller says being understood. espeak-ng is the only Mandarin voice on this machine
and Whisper base understands almost none of it (bench/results/asr_zh.json: human speech is measured there), so
this test checks that the spoken turn is heard as Chinese and answered in Chinese, not what it meant."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from collections.abc import Iterator

import numpy as np
import pytest

from tests.voice_helpers import VoiceServer, silence, voice_server
from voice_gateway.audio import resample_pcm16
from voice_gateway.call_log import CallEvent, LifecycleKind, read_call_log
from voice_gateway.simulated_caller import CallerScript, dial_twilio, run_caller
from voice_gateway.tts import AudioChunk, EspeakTts

RATE = 8000
HAN = re.compile(r"[\u4e00-\u9fff]")


def _espeak_has_mandarin() -> bool:
    try:
        voices = subprocess.run(["espeak-ng", "--voices=cmn"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return False
    return "cmn" in voices


pytestmark = pytest.mark.skipif(not _espeak_has_mandarin(), reason="espeak-ng without its Mandarin (cmn) voice")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VoiceServer]:
    env = {"CALLPILOT_LANGUAGES": "zh,en", "CALLPILOT_ASR_ENGINE": "whisper-base", "CALLPILOT_ASR_PROCESSES": "1"}
    with voice_server(tmp_path_factory.mktemp("mandarin"), env) as running:
        yield running


def mandarin(text: str) -> bytes:
    async def render() -> AudioChunk:
        return AudioChunk.join([chunk async for chunk in EspeakTts().synthesize(text, "cmn")])

    audio = asyncio.run(render())
    pcm = resample_pcm16(audio.pcm, audio.sample_rate, RATE)
    return (np.frombuffer(pcm, "<i2") // 2 * 2).astype("<i2").tobytes()


def the_call(server: VoiceServer) -> list[CallEvent]:
    question = mandarin("我想查询我的订单")
    asked_s = len(question) / 2 / RATE
    keys = [("1", asked_s + 8.0), ("1", asked_s + 11.0)]  # the menus: orders, then the status of an order
    keys += [(key, asked_s + 14.0 + 0.25 * i) for i, key in enumerate("48215#")]
    keys += [("0", asked_s + 26.0)]  # a person, please
    script = CallerScript(question + silence(36.0, RATE), keys=tuple(keys), tail_s=12.0, quiet_s=None,
                          realtime=True, wait_for_greeting_s=40.0)

    async def call() -> str:
        url = server.url.replace("http://", "ws://") + "/media/twilio"
        async with dial_twilio(url, caller="+8613812345678") as line:
            await run_caller(line, script)
            return str(line.call_id)

    call_id = asyncio.run(call())
    for _ in range(100):
        events = [e for e in read_call_log(server.call_log) if e.call_id == call_id]
        if events and events[-1].kind is LifecycleKind.ENDED:
            return events
        time.sleep(0.1)
    raise AssertionError(f"the call did not end: {events}")


def test_a_mandarin_caller_is_served_in_mandarin_and_handed_over(server: VoiceServer) -> None:
    events = the_call(server)
    bot = [str(e.data.get("planned") or "") for e in events
           if e.kind is LifecycleKind.TURN and e.data["speaker"] == "bot"]
    caller = [e for e in events if e.kind is LifecycleKind.TURN and e.data["speaker"] == "caller"]
    assert bot and "您好" in bot[0] and "Brightline家电" in bot[0], bot  # a 400 line greets in Chinese
    assert caller and caller[0].data["language"] == "zh" and HAN.search(str(caller[0].data["text"])), caller
    assert HAN.search(bot[1]), bot  # the answer to the spoken turn, in Chinese
    assert any("查询订单状态请按1" in line for line in bot), bot  # the keypad menus in Chinese
    status = next(line for line in bot if "48215" in line)
    assert "Brightline Fleet" in status and "发出" in status, bot
    handoff = next(e for e in events if e.kind is LifecycleKind.HANDOFF and "summary" in e.data)
    assert handoff.data["language"] == "zh" and "待处理" in str(handoff.data["summary"]), handoff
    assert handoff.data["caller_number"] == "[phone]"  # the call log file is redacted, +86 numbers too
    back = next(e for e in events if e.kind is LifecycleKind.HANDOFF and e.data.get("stage") == "back_to_bot")
    after = [line for e, line in zip([e for e in events if e.kind is LifecycleKind.TURN
                                      and e.data["speaker"] == "bot"], bot, strict=True) if e.at >= back.at]
    assert any("现在没有客服人员可以接听" in line for line in after), after  # taken back, in Chinese
    assert not [line for line in bot if re.search(r"\b(?:the|you|your|our|please)\b", line, re.IGNORECASE)], bot
