"""Typed settings of the dialogue engine, grouped by concern."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.dialogue.handoff import HandoffSettings
from bot.dialogue.languages import BUILT_IN_TEXTS, STOP_WORDS
from bot.dialogue.validation import DEFAULT_VALIDATORS, Validator

# Texts the engine needs when the domain has no response for them.
DEFAULT_TEXTS: dict[str, str] = {
    "utter_default": "Sorry, I didn't get that. Could you say it another way?",
    "utter_handoff": "I'm connecting you to a colleague who can help. Please stay on the line.",
    "utter_handoff_waiting": "A colleague will be with you shortly. Thanks for waiting.",
    "utter_form_stopped": "Okay, let's leave that.",
    "utter_how_can_i_help": "What else can I do for you?",
    "utter_invalid_generic": "Sorry, that doesn't look right.",
    "utter_no_input": "Sorry, I didn't hear anything.",
    "utter_action_failed": "Sorry, something went wrong on my side.",
    "utter_nothing_to_repeat": "I haven't said anything yet. How can I help you?",
    "utter_greet": "Hello, how can I help you today?",
    "utter_ivr_intro": "Let's try the keypad instead.",
    "utter_speech_unavailable": "Sorry, I can't understand speech right now. Let's use the keypad instead.",
    "utter_ivr_unavailable": "Sorry, the keypad menu is not available right now.",
    "utter_session_ended": "This call has ended.",
    "utter_confirm_goodbye": "Sorry, did you want to end the call?",
    "utter_offer_order_check": "Would you like me to check a specific order?",
}


@dataclass(frozen=True)
class DialogueSettings:
    """How patient the bot is, when it gives up, and where it sends callers."""

    # Failure limits
    fallbacks_before_escalation: int = 2
    no_input_before_ivr: int = 2
    form_failures_before_handoff: int = 2
    verification_attempts: int = 3  # wrong answers to the security question before the bot refuses the change
    # Understanding: these intents mean "not understood" (escalation counts them)
    not_understood_intents: tuple[str, ...] = ("nlu_fallback", "out_of_scope")
    topic_change_confidence: float = 0.5  # below this, an intent does not leave a form
    speech_back_confidence: float = 0.8  # a spoken intent this sure leaves the IVR
    # Ending the call: the bot hangs up only on a goodbye this sure, after the caller's first turn;
    # otherwise it asks first (`utter_confirm_goodbye`): ending a call on a guess is the worst failure
    ending_intents: tuple[str, ...] = ("goodbye",)
    goodbye_confidence: float = 0.9
    # A request for a person is trusted from the NLU only this sure ("48215" alone parses as talk_to_human at
    # 0.46); the words "agent", "human", "operator"... always count
    human_request_confidence: float = 0.6
    # A message that is only an identifier ("48215", "R118902") outside a form means this intent
    bare_identifier_intents: dict[str, str] = field(default_factory=lambda: {
        "order_number": "check_order_status", "repair_number": "track_repair"})
    # A general question on these intents ("how long does delivery take?") gets the policy response first,
    # then an offer to run the form for a specific order: intent -> (response, form)
    general_answers: dict[str, tuple[str, str]] = field(default_factory=lambda: {
        "delivery_time": ("utter_delivery_policy", "delivery_form"),
        "refund_status": ("utter_refund_policy", "refund_form"),
    })
    max_text_chars: int = 1000  # longer messages are cut before the NLU sees them
    # Languages: the line's languages, the first the default (spoken until the caller's is known). A caller's
    # language is detected per turn from what they say, or chosen with a key from the language menu, which
    # is offered when a caller says nothing at the start of a call on a line with several languages.
    languages: tuple[str, ...] = ("en", "zh")
    # Channels: on these, repeated failures go to the DTMF menu before a human
    voice_channels: tuple[str, ...] = ("voice", "phone", "twilio", "audiosocket", "sip")
    # Forms
    stop_words: tuple[str, ...] = tuple(w for words in STOP_WORDS.values() for w in words)
    small_talk_intents: tuple[str, ...] = ("greet", "thank")
    # Slots that take a short answer as is when the NLU tags nothing ("Boston")
    free_text_slots: tuple[str, ...] = ("city", "product")
    # Slots that belong to one session only (the security question in progress): never carried over
    session_only_slots: tuple[str, ...] = ("verification_answer", "verification_for",
                                           "verification_failures", "caller_verified")
    # Built-in responses a domain may override
    hangup_actions: tuple[str, ...] = ("utter_goodbye",)
    texts: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_TEXTS))
    # Errors: False answers politely and hands over; True re-raises (tests)
    raise_errors: bool = False
    # Handoff
    handoff: HandoffSettings = field(default_factory=HandoffSettings)
    # Validation: slot name -> validator
    validators: dict[str, Validator] = field(default_factory=lambda: dict(DEFAULT_VALIDATORS))

    @property
    def default_language(self) -> str:
        return self.languages[0] if self.languages else "en"

    def text(self, name: str, language: str | None = None) -> str | None:
        """A built-in text in `language` (English if it has none)."""
        return BUILT_IN_TEXTS.get(language or "", {}).get(name) or self.texts.get(name)
