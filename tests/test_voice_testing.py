"""The voice test harness itself (`voice_gateway.testing`): a call through the real pipeline that reads like a
conversation, and a wait that fails with what the bot did say."""

from __future__ import annotations

import asyncio

import pytest

from bot.dialogue import DialogueEngine
from tests.agent_leg_fixtures import fresh
from voice_gateway.pipeline import VoiceServices
from voice_gateway.testing import PhoneCall, ScriptedHandoff


def test_a_call_reads_like_a_conversation(models: tuple[VoiceServices, DialogueEngine]) -> None:
    async def go() -> None:
        port = ScriptedHandoff()
        call = PhoneCall(fresh(models, port), port)
        assert "thanks for calling" in (await call.greeting()).lower()
        await call.say("what are your opening hours")
        assert "monday" in (await call.expect_bot("open")).lower()
        await call.until(call.quiet)
        said = len(call.bot_said())
        await call.press("1")
        await call.until(lambda: len(call.bot_said()) > said)  # the key is answered (the keypad menu)
        with pytest.raises(AssertionError, match="bot said"):
            await call.expect_bot("zebra crossing", limit_s=2)

    asyncio.run(go())
