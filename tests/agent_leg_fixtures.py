"""The agent-leg tests' shared parts (the models fixture is in conftest.py): a call's services with a scripted
handoff side, and a caller who asks for a person."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from bot.dialogue import DialogueEngine
from callpilot.handoff_port import bot_resumer
from voice_gateway.call_log import CallLog
from voice_gateway.pipeline import PipelineSettings, VoiceServices
from voice_gateway.pipeline.agent_leg import Leg
from voice_gateway.testing import PhoneCall, ScriptedHandoff, tts_speech

ROOT = Path(__file__).resolve().parent.parent


def fresh(models: tuple[VoiceServices, DialogueEngine], port: ScriptedHandoff) -> VoiceServices:
    services, engine = models
    return dataclasses.replace(
        # The agent leg's transcription is tested end to end elsewhere (tests/test_handoff_bridge_call.py, the
        # browser floor test): these calls run faster than real time, where two more ASR streams crowd the loop.
        services, call_log=CallLog(None), settings=PipelineSettings(record_calls=True, agent_transcript=False),
        handoff=port, resume_bot=bot_resumer(engine),
    )


async def ask_for_a_human(call: PhoneCall, services: VoiceServices) -> None:
    await call.feed(seconds=1.0)
    await call.until(call.quiet)  # the greeting has played
    await call.feed(await tts_speech(services, "I want to talk to a human agent please"), seconds=4.0)
    await call.until(lambda: call.pipeline.leg is not None and call.pipeline.leg.state is not Leg.BOT)


async def handed_over(models: tuple[VoiceServices, DialogueEngine], port: ScriptedHandoff
                      ) -> tuple[PhoneCall, VoiceServices]:
    """A call on `port` whose caller asked for a person (the leg has left the bot)."""
    services = fresh(models, port)
    call = PhoneCall(services, port)
    await ask_for_a_human(call, services)
    return call, services
