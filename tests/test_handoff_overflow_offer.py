"""A caller who waited too long chooses by key (callback, message, transfer) or stays on the line for the
default; keys pressed while talking to an agent go to the agent's desktop. Real audio through the pipeline,
the handoff side scripted (ScriptedHandoff)."""

from __future__ import annotations

import asyncio

from bot.dialogue import DialogueEngine
from tests.agent_leg_fixtures import ask_for_a_human, fresh
from voice_gateway.call_log import LifecycleKind
from voice_gateway.pipeline import VoiceServices
from voice_gateway.pipeline.agent_leg import Leg
from voice_gateway.pipeline.agent_leg_phrases import OverflowOffer
from voice_gateway.pipeline.handoff_port import AgentJoined, NoAgent
from voice_gateway.testing import PhoneCall, ScriptedHandoff, dominant_hz

CHOICES = ("callback", "voicemail", "transfer")


def handoff_stages(services: VoiceServices) -> list[dict[str, object]]:
    return [dict(e.data) for e in services.call_log.events if e.kind is LifecycleKind.HANDOFF and "stage" in e.data]


def test_the_offer_names_the_keys_and_the_default() -> None:
    offer = OverflowOffer(CHOICES, "voicemail", 5.0)
    assert offer.text() == (
        "None of our colleagues can take your call right now. Press 1 for a call back at the number you are calling from, "
        "2 to leave a message, or 3 to be transferred to a colleague. "
        "Or stay on the line and you can leave a message.")
    assert [offer.key(d) for d in "1234#"] == ["callback", "voicemail", "transfer", None, None]
    assert offer.quiet(10_000) is None  # the offer has just been spoken: the wait starts now
    assert offer.quiet(14_999) is None
    assert offer.quiet(15_000) == "voicemail"


def test_without_the_callers_number_a_callback_is_not_offered() -> None:
    from voice_gateway.pipeline.agent_leg import AgentLeg

    leg = AgentLeg("c1", 8000, ScriptedHandoff(), None, caller="")  # type: ignore[arg-type]
    assert leg._offerable(NoAgent("voicemail", None, CHOICES), CHOICES) == ("voicemail", "transfer")
    assert leg._offerable(NoAgent("voicemail", "+4930555", CHOICES), CHOICES) == CHOICES
    assert leg._offerable(NoAgent("callback", None, ("callback",)), ("callback",)) == ()


def test_a_key_picks_a_callback_which_goes_on_the_list(models: tuple[VoiceServices, DialogueEngine]) -> None:
    async def go() -> None:
        port = ScriptedHandoff()
        services = fresh(models, port)
        call = PhoneCall(services, port)
        await ask_for_a_human(call, services)
        port.pushed.put_nowait(NoAgent("voicemail", None, CHOICES, 5.0, "+4930123456"))
        await call.until(lambda: any("Press 1 for a call back" in s for s in call.bot_said()))
        assert call.pipeline.leg is not None and call.pipeline.leg.state is Leg.OFFERING
        call.line.send_dtmf("1")
        await call.until(lambda: call.line.closed)
        assert port.callbacks == [call.pipeline.state.call_id if call.pipeline.state else ""]
        assert any("call you back on + 1 6 1 7" in s for s in call.bot_said())
        stages = handoff_stages(services)
        assert {"stage": "overflow", "action": "callback", "target": None, "chosen_by": "key 1"} in stages
        assert {"stage": "callback_requested", "number": "+16175550142"} in stages

    asyncio.run(go())


def test_staying_on_the_line_takes_the_default(models: tuple[VoiceServices, DialogueEngine]) -> None:
    async def go() -> None:
        port = ScriptedHandoff()
        services = fresh(models, port)
        call = PhoneCall(services, port)
        await ask_for_a_human(call, services)
        port.pushed.put_nowait(NoAgent("voicemail", None, ("callback", "voicemail"), 2.0))
        await call.until(lambda: any("Or stay on the line" in s for s in call.bot_said()))
        await call.until(lambda: not call.pipeline.bot_busy())
        await call.feed(seconds=1.0)
        assert call.pipeline.leg is not None and call.pipeline.leg.state is Leg.OFFERING  # still waiting for a key
        call.line.send_dtmf("7")  # not one of the choices: ignored
        await call.until(lambda: any("leave a message after the tone" in s for s in call.bot_said()), limit_s=30)
        assert call.pipeline.leg.state is Leg.OVERFLOW and port.callbacks == []
        await call.until(lambda: not call.pipeline.bot_busy())
        tone = await call.feed(seconds=0.4)
        assert abs(dominant_hz(tone) - 1000) < 20  # the voicemail tone
        assert {"stage": "overflow", "action": "voicemail", "target": None, "chosen_by": "no key"} in \
            handoff_stages(services)
        await call.line.hang_up()

    asyncio.run(go())


def test_keys_while_talking_to_the_agent_go_to_the_agent(models: tuple[VoiceServices, DialogueEngine]) -> None:
    async def go() -> None:
        port = ScriptedHandoff()
        services = fresh(models, port)
        call = PhoneCall(services, port)
        await ask_for_a_human(call, services)
        call.line.send_dtmf("9")  # while queued: the leg has it (no offer yet, so nothing happens)
        await call.feed(seconds=0.2)
        await call.until(lambda: not call.pipeline.bot_busy())
        port.pushed.put_nowait(AgentJoined("a1", "Alice"))
        await call.feed(seconds=0.2)
        said = len(call.bot_said())
        for digit in "5#":
            call.line.send_dtmf(digit)
            await call.feed(seconds=0.4)
        assert port.keys_to_agent == ["5", "#"]
        assert len(call.bot_said()) == said  # the bot did not answer the keys
        # Keys are logged as runs (a card typed on the keypad is redacted whole); a run ends with "#" or the leg.
        keys = [(e.data["keys"], e.data.get("leg")) for e in services.call_log.events if e.kind is LifecycleKind.DTMF]
        assert keys[-2:] == [("9", "queued"), ("5#", "agent")]
        await call.line.hang_up()

    asyncio.run(go())
