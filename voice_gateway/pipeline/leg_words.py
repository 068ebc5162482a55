"""What the agent leg says to the caller, and the overflow offer the caller answers with a key.

Sans-I/O: `OverflowOffer` is told the keys and the call clock and says which action was chosen, so the
offer's rules (keys 1, 2, 3 in the configured order, the default after a quiet spell) are tested without a call.
"""

from __future__ import annotations

from dataclasses import dataclass


def queue_announcement(position: int, expected_wait_s: float | None) -> str:
    """The caller's place in the queue, and the expected wait only when it is known."""
    where = "You are next in line." if position <= 1 else f"You are number {position} in the queue."
    if expected_wait_s is None:
        return where
    minutes = round(expected_wait_s / 60)
    if expected_wait_s < 60:
        wait = "The expected wait is less than a minute."
    else:
        wait = f"The expected wait is about {minutes} minute{'s' if minutes != 1 else ''}."
    return f"{where} {wait}"


OVERFLOW_TEXT = {
    "callback": "We will call you back{on} as soon as someone is free. Goodbye.",
    "voicemail": "Please leave a message after the tone, then hang up.",
    "transfer": "I am transferring your call{to}.",
}
ALL_BUSY = "All our colleagues are busy. "
CHOICE_TEXT = {
    "callback": "{key} for a call back at the number you are calling from",
    "voicemail": "{key} to leave a message",
    "transfer": "{key} to be transferred to a colleague",
}
STAY_TEXT = {
    "callback": "we will call you back",
    "voicemail": "you can leave a message",
    "transfer": "we will transfer you",
}
HAND_BACK_TEXT = "You are back with the virtual assistant. What else can I do for you?"
CLOSED_TEXT = "Our team is not available right now. I can still help with many things. What do you need?"
NO_AGENT_TEXT = "Nobody from our team can take your call right now. I can still help. What do you need?"


def spoken_number(number: str) -> str:
    """'+16175550142' -> '+ 1 6 1 7 ...': digit by digit, as a phone number is read out."""
    return " ".join(number)


def overflow_text(action: str, target: str | None, *, caller: str = "", first: bool = True) -> str:
    """What the caller hears when `action` happens (`first`: nobody has told them everyone is busy yet)."""
    on = f" on {spoken_number(target or caller)}" if action == "callback" and (target or caller) else ""
    to = f" to {spoken_number(target)}" if action == "transfer" and target else ""
    text = OVERFLOW_TEXT.get(action, OVERFLOW_TEXT["callback"]).format(on=on, to=to)
    return (ALL_BUSY if first else "") + text


@dataclass
class OverflowOffer:
    """The caller may pick one of `choices` by key (1 = the first); without a key for `timeout_s` after the
    offer was spoken, `default` happens."""

    choices: tuple[str, ...]
    default: str
    timeout_s: float
    deadline_ms: float | None = None  # set once the offer has been spoken (the bot went quiet)

    def text(self) -> str:
        parts = [CHOICE_TEXT[action].format(key=n) for n, action in enumerate(self.choices, start=1)
                 if action in CHOICE_TEXT]
        listed = ", ".join(parts[:-1]) + f", or {parts[-1]}" if len(parts) > 1 else parts[0]
        return (f"None of our colleagues can take your call right now. Press {listed}. "
                f"Or stay on the line and {STAY_TEXT.get(self.default, STAY_TEXT['callback'])}.")

    def key(self, digit: str) -> str | None:
        """The action for this key, or None (not one of the offered keys)."""
        if digit.isdigit() and 1 <= int(digit) <= len(self.choices):
            return self.choices[int(digit) - 1]
        return None

    def quiet(self, now_ms: float) -> str | None:
        """Called while the bot is quiet: the default once `timeout_s` passed since the offer was spoken."""
        if self.deadline_ms is None:
            self.deadline_ms = now_ms + self.timeout_s * 1000
            return None
        return self.default if now_ms >= self.deadline_ms else None
