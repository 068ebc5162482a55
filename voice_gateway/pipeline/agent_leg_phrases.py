"""What the agent leg says to the caller, and the overflow offer the caller answers with a key.

Sans-I/O: `OverflowOffer` is told the keys and the call clock and says which action was chosen, so the
offer's rules (keys 1, 2, 3 in the configured order, the default after a quiet spell) are tested without a call.
"""

from __future__ import annotations

from dataclasses import dataclass


def queue_announcement(position: int, expected_wait_s: float | None, language: str = "en") -> str:
    """The caller's place in the queue, and the expected wait only when it is known."""
    minutes = round(expected_wait_s / 60) if expected_wait_s is not None else 0
    if language == "zh":
        where = "您是下一位。" if position <= 1 else f"您前面还有{position - 1}位。"
        if expected_wait_s is None:
            return where
        return where + ("预计等待不到一分钟。" if expected_wait_s < 60 else f"预计等待大约{minutes}分钟。")
    where = "You are next in line." if position <= 1 else f"You are number {position} in the queue."
    if expected_wait_s is None:
        return where
    if expected_wait_s < 60:
        wait = "The expected wait is less than a minute."
    else:
        wait = f"The expected wait is about {minutes} minute{'s' if minutes != 1 else ''}."
    return f"{where} {wait}"


# What the leg says, by language ("en" when the call's language has no words of its own).
WORDS: dict[str, dict[str, str]] = {
    "en": {
        "callback": "We will call you back{on} as soon as someone is free. Goodbye.",
        "voicemail": "Please leave a message after the tone, then hang up.",
        "transfer": "I am transferring your call{to}.",
        "all_busy": "All our colleagues are busy. ",
        "choice_callback": "{key} for a call back at the number you are calling from",
        "choice_voicemail": "{key} to leave a message",
        "choice_transfer": "{key} to be transferred to a colleague",
        "stay_callback": "we will call you back",
        "stay_voicemail": "you can leave a message",
        "stay_transfer": "we will transfer you",
        "offer": "None of our colleagues can take your call right now. Press {listed}. Or stay on the line and {stay}.",
        "or": ", or ",
        "on": " on {number}",
        "to": " to {number}",
        "hand_back": "You are back with the virtual assistant. What else can I do for you?",
        "closed": "Our team is not available right now. I can still help with many things. What do you need?",
        "no_agent": "Nobody from our team can take your call right now. I can still help. What do you need?",
    },
    "zh": {
        "callback": "客服有空后会尽快给您回电{on}。再见。",
        "voicemail": "请在提示音后留言，留言完毕请挂机。",
        "transfer": "正在为您转接{to}。",
        "all_busy": "客服人员都在忙。",
        "choice_callback": "回电到您现在的号码请按{key}",
        "choice_voicemail": "留言请按{key}",
        "choice_transfer": "转接其他同事请按{key}",
        "stay_callback": "我们会给您回电",
        "stay_voicemail": "您可以留言",
        "stay_transfer": "我们会为您转接",
        "offer": "现在暂时没有客服人员可以接听。{listed}。或者请不要挂机，{stay}。",
        "or": "，",
        "on": "，号码{number}",
        "to": "到{number}",
        "hand_back": "您已回到智能客服，请问还有什么可以帮您？",
        "closed": "人工客服现在不在服务时间，很多问题我也可以帮您办理，请问您需要什么帮助？",
        "no_agent": "现在没有客服人员可以接听，我可以继续帮您，请问您需要什么帮助？",
    },
}
HAND_BACK_TEXT = WORDS["en"]["hand_back"]
CLOSED_TEXT = WORDS["en"]["closed"]
NO_AGENT_TEXT = WORDS["en"]["no_agent"]


def words(language: str) -> dict[str, str]:
    return WORDS.get(language, WORDS["en"])


def spoken_number(number: str) -> str:
    """'+16175550142' -> '+ 1 6 1 7 ...': digit by digit, as a phone number is read out."""
    return " ".join(number)


def overflow_text(action: str, target: str | None, *, caller: str = "", first: bool = True,
                  language: str = "en") -> str:
    """What the caller hears when `action` happens (`first`: nobody has told them everyone is busy yet)."""
    said = words(language)
    number = target or caller
    on = said["on"].format(number=spoken_number(number)) if action == "callback" and number else ""
    to = said["to"].format(number=spoken_number(target)) if action == "transfer" and target and \
        not target.startswith(("sip:", "sips:")) else ""  # a SIP address is not read out
    text = said.get(action, said["callback"]).format(on=on, to=to)
    return (said["all_busy"] if first else "") + text


@dataclass
class OverflowOffer:
    """The caller may pick one of `choices` by key (1 = the first); without a key for `timeout_s` after the
    offer was spoken, `default` happens."""

    choices: tuple[str, ...]
    default: str
    timeout_s: float
    deadline_ms: float | None = None  # set once the offer has been spoken (the bot went quiet)

    def text(self, language: str = "en") -> str:
        said = words(language)
        parts = [said[f"choice_{action}"].format(key=n) for n, action in enumerate(self.choices, start=1)
                 if f"choice_{action}" in said]
        listed = ", ".join(parts[:-1]) + said["or"] + parts[-1] if len(parts) > 1 else parts[0]
        if language == "zh":
            listed = "，".join(parts)
        stay = said.get(f"stay_{self.default}", said["stay_callback"])
        return said["offer"].format(listed=listed, stay=stay)

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
