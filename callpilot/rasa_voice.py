"""Voice calls on the Rasa brain: what the caller says goes to the Rasa server, everything else stays with
callpilot's dialogue engine - the greeting, keys and the DTMF menus, silences, the call's transcript, the
handoff context and the records - so the same call runs on either brain.

A Rasa turn is read from two answers: the REST channel's messages, and the tracker (the parse of the
utterance, the slots, the actions run since it). Rasa's `action_handoff` (served by callpilot's action server)
runs (it may set the `handoff_reason` slot); `utter_goodbye` / `action_hangup` end the call. A Rasa server that does not
answer sends the call to the DTMF menus, as a failed ASR does.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from bot.dialogue import BotTurn, DialogueEngine, RemoteTurn
from bot.dialogue.events import HANDOFF_SLOT
from bot.rasa_brain.client import RasaClient, RasaUnavailable

log = logging.getLogger("callpilot.rasa_voice")
HANGUP_ACTIONS = frozenset({"utter_goodbye", "action_hangup"})
HANDOFF_ACTION = "action_handoff"
LOCAL_MODES = frozenset({"ivr", "handoff", "ended"})  # the engine answers: the menus, waiting for an agent


def remote_turn(replies: list[dict[str, Any]], tracker: dict[str, Any]) -> RemoteTurn:
    """Our view of one Rasa turn from its REST replies and its tracker afterwards."""
    latest = tracker.get("latest_message") or {}
    events = tracker.get("events") or []
    last_user = max((i for i, e in enumerate(events) if e.get("event") == "user"), default=-1)
    since = events[last_user + 1:]
    actions = tuple(str(e["name"]) for e in since if e.get("event") == "action" and e.get("name")
                    and e["name"] != "action_listen")
    handoff = next((str(e["value"]) for e in since
                    if e.get("event") == "slot" and e.get("name") == HANDOFF_SLOT and e.get("value")), None)
    if handoff is None and HANDOFF_ACTION in actions:
        handoff = ""  # the engine says why, from the caller's words (as for its own action_handoff)
    intent = latest.get("intent") or {}
    return RemoteTurn(
        intent={"name": intent.get("name"), "confidence": intent.get("confidence")},
        entities=tuple(e for e in latest.get("entities") or [] if isinstance(e, dict)),
        messages=tuple(str(m["text"]) for m in replies if m.get("text")),
        slots={k: v for k, v in (tracker.get("slots") or {}).items() if v is not None and k != HANDOFF_SLOT},
        actions=actions,
        handoff_reason=handoff,
        hangup=any(a in HANGUP_ACTIONS for a in actions),
    )


class RasaDialogue:
    """The voice pipeline's `Dialogue` on a Rasa server (see the module docstring)."""

    def __init__(self, engine: DialogueEngine, url: str, timeout: float) -> None:
        self.engine, self.url, self.timeout = engine, url, timeout

    def start(self, sender_id: str, caller_number: str | None = None, channel: str = "voice",
              language: str | None = None) -> BotTurn:
        return self.engine.start(sender_id, caller_number, channel, language)

    def handle_text(self, sender_id: str, text: str, caller_number: str | None = None,
                    channel: str | None = None) -> BotTurn:
        state = self.engine.state_of(sender_id)
        if state is not None and state.mode in LOCAL_MODES:
            return self.engine.handle_text(sender_id, text, caller_number, channel)
        try:
            replies, tracker = asyncio.run(self._ask(sender_id, text))
        except RasaUnavailable as exc:  # the reason (it names our servers) goes to the log only
            log.error("Rasa brain: %s; call %s goes to the keypad menu", exc, sender_id)
            return self.engine.speech_unavailable(sender_id, caller_number, channel)
        return self.engine.handle_remote_turn(sender_id, text, remote_turn(replies, tracker), caller_number, channel)

    def handle_dtmf(self, sender_id: str, keys: str, caller_number: str | None = None,
                    channel: str | None = None) -> BotTurn:
        return self.engine.handle_dtmf(sender_id, keys, caller_number, channel)

    def handle_no_input(self, sender_id: str) -> BotTurn:
        return self.engine.handle_no_input(sender_id)

    def speech_unavailable(self, sender_id: str, caller_number: str | None = None,
                           channel: str | None = None) -> BotTurn:
        return self.engine.speech_unavailable(sender_id, caller_number, channel)

    async def _ask(self, sender_id: str, text: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        async with RasaClient(self.url, timeout=self.timeout) as client:
            replies = await client.send(sender_id, text)
            return replies, await client.tracker(sender_id)
