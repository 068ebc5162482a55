"""Text channels: Rasa's REST webhook and an interactive chat loop."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from bot.dialogue.engine import BotTurn

_LONE_KEY = re.compile(r"^\s*[0-9*#]\s*$")
# "48215#" or "*1" are keypad entries; a bare "48215" stays text (a typed order number).
_KEY_ENTRY = re.compile(r"^\s*[0-9*#]*[*#][0-9*#]*\s*$")
_DTMF_COMMAND = re.compile(r"^\s*/dtmf\s+([0-9*#]+)\s*$", re.IGNORECASE)


class ChatEngine(Protocol):
    """The engine methods a text channel uses."""

    def start(self, sender_id: str, caller_number: str | None = None,
              channel: str = "voice", language: str | None = None) -> BotTurn: ...

    def handle_text(self, sender_id: str, text: str, caller_number: str | None = None,
                    channel: str | None = None) -> BotTurn: ...

    def handle_dtmf(self, sender_id: str, keys: str, caller_number: str | None = None,
                    channel: str | None = None) -> BotTurn: ...

    def handle_no_input(self, sender_id: str) -> BotTurn: ...


@dataclass(frozen=True)
class Keys:
    """A text message that is really key presses."""

    keys: str


def as_dtmf(message: str) -> Keys | None:
    """`/dtmf 123#`, a lone `0`-`9`/`*`/`#`, or keys with `*`/`#` ("48215#") are key presses."""
    if match := _DTMF_COMMAND.match(message):
        return Keys(match.group(1))
    if _LONE_KEY.match(message) or _KEY_ENTRY.match(message):
        return Keys(message.strip())
    return None


def rest_webhook(engine: ChatEngine, body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rasa REST channel: `{"sender", "message"}` in, `[{"recipient_id", "text"}]` out."""
    sender = str(body.get("sender") or "default")
    message = body.get("message")
    metadata = body.get("metadata") if isinstance(body.get("metadata"), Mapping) else {}
    caller = (metadata or {}).get("caller_number")
    caller_number = str(caller) if caller else None
    text = message if isinstance(message, str) else ""
    keys = as_dtmf(text)
    if keys is not None:
        turn = engine.handle_dtmf(sender, keys.keys, caller_number, channel="rest")
    else:
        turn = engine.handle_text(sender, text, caller_number, channel="rest")
    return turn_to_rest(sender, turn)


def turn_to_rest(sender: str, turn: BotTurn) -> list[dict[str, Any]]:
    """The REST channel's answer: one text per message, then handoff / hang-up as custom.

    The handoff says only where the conversation goes (skill, reason, priority), never its context (transcript,
    slots, caller number, summary): whoever knows a `sender` id may post as that sender, so a reply must not
    give away what the conversation held before.
    """
    out: list[dict[str, Any]] = [{"recipient_id": sender, "text": m} for m in turn.messages]
    if turn.handoff is not None:
        h = turn.handoff
        out.append({"recipient_id": sender,
                    "custom": {"handoff": {"skill": h.skill, "reason": h.reason, "priority": h.priority}}})
    if turn.hangup:
        out.append({"recipient_id": sender, "custom": {"hangup": True}})
    return out


def describe_debug(turn: BotTurn) -> str:
    """One line of what the bot understood, for `callpilot chat --debug`."""
    d = turn.debug
    confidence = f"{d.confidence:.2f}" if isinstance(d.confidence, (int, float)) else "-"
    parts = [f"intent={d.intent or '-'} ({confidence})", f"mode={d.mode}"]
    if d.entities:
        parts.append("entities=" + ", ".join(f"{e.get('entity')}={e.get('value')}"
                                             for e in d.entities))
    if d.slots:
        parts.append("slots=" + ", ".join(f"{k}={v}" for k, v in sorted(d.slots.items())))
    if d.active_form:
        parts.append(f"form={d.active_form} asking {d.requested_slot}")
    if d.ivr_menu:
        parts.append(f"ivr={d.ivr_menu} path={' > '.join(d.ivr_path)}")
    if d.actions:
        parts.append("actions=" + ", ".join(d.actions))
    return "  [" + " | ".join(parts) + "]"


def run_chat(
    engine: ChatEngine,
    input_fn: Callable[[str], str],
    output_fn: Callable[[str], None],
    debug: bool = False,
    *,
    sender_id: str = "chat",
    caller_number: str | None = "+15550100",
    channel: str = "voice",
) -> None:
    """Talk to the bot: digits, `*`, `#` are keys; empty line is silence; `/quit` leaves."""
    show(engine.start(sender_id, caller_number, channel), output_fn, debug)
    while True:
        try:
            line = input_fn("you> ")
        except (EOFError, KeyboardInterrupt):
            break
        if line.strip().lower() in ("/quit", "/exit"):
            break
        keys = as_dtmf(line)
        if keys is not None:
            turn = engine.handle_dtmf(sender_id, keys.keys)
        elif not line.strip():
            turn = engine.handle_no_input(sender_id)
        else:
            turn = engine.handle_text(sender_id, line)
        show(turn, output_fn, debug)
        if turn.hangup:
            break


def show(turn: BotTurn, output_fn: Callable[[str], None], debug: bool) -> None:
    for message in turn.messages:
        output_fn(f"bot> {message}")
    if debug:
        output_fn(describe_debug(turn))
    if turn.handoff is not None:
        h = turn.handoff
        output_fn(f"[handoff to {h.skill}, priority {h.priority}, reason {h.reason}]")
        output_fn(f"[summary] {h.summary}")
    if turn.hangup:
        output_fn("[call ended]")
