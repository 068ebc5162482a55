"""What the bot does with something the caller said: handoff, forms, corrections, rules."""

from __future__ import annotations

import logging
import re
import unicodedata
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from bot.dialogue import handoff as handoff_rules
from bot.dialogue.forms import Extraction, FormContext, extract_slots
from bot.dialogue.general import is_general_question
from bot.dialogue.policy import PolicyInput
from bot.dialogue.state import PendingConfirmation
from bot.dialogue.turn import EngineParts, TurnRunner
from bot.language import chinese_to_digits, detect_language, han_count

if TYPE_CHECKING:
    from bot.dialogue.ivr_bridge import IvrBridge

log = logging.getLogger(__name__)
FALLBACK = "nlu_fallback"
CORRECTION_INTENTS = ("deny", "affirm", "inform", FALLBACK)


class _Parser(Protocol):
    def parse(self, text: str) -> dict[str, Any]: ...


def clean_text(text: object, max_chars: int) -> str:
    """Printable text only, whitespace collapsed, cut to `max_chars` (first, so a huge text costs nothing)."""
    if not isinstance(text, str):
        return ""
    kept = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in text[:max_chars])
    return " ".join(kept.split())[:max_chars]


def fallback_parse(text: str) -> dict[str, Any]:
    """The parse result used when the NLU cannot answer."""
    intent = {"name": FALLBACK, "confidence": 0.0}
    return {"text": text, "intent": intent, "entities": [], "intent_ranking": [intent]}


def safe_parse(interpreter: _Parser, text: str, language: str | None = None,
               languages: tuple[str, ...] = ("en",)) -> dict[str, Any]:
    """Parse with the NLU; a failure or a malformed answer counts as not understood.

    The result's `language` is the text's (the NLU's answer, else detected), else `language`, the
    conversation's so far ("48215" is in no language).
    """
    try:
        multilingual = getattr(interpreter, "languages", None)
        parse = interpreter.parse(text, fallback=language) if multilingual else interpreter.parse(text)  # type: ignore[call-arg]
    except Exception:
        log.exception("NLU failed on %r", text[:80])
        parse = fallback_parse(text)
    if not isinstance(parse, dict) or not isinstance(parse.get("intent"), dict):
        parse = fallback_parse(text)
    entities = [e for e in parse.get("entities") or [] if isinstance(e, dict)]
    said = parse.get("language") or detect_language(text, languages) or language
    return {**parse, "text": text, "entities": entities, "language": said if said in languages else language}


class SpeechTurn:
    """Decides the bot's answer to one understood utterance."""

    def __init__(self, brain: EngineParts, ivr: IvrBridge) -> None:
        self.brain, self.ivr = brain, ivr

    def respond(self, runner: TurnRunner, text: str) -> None:
        state, settings = runner.state, self.brain.settings
        intent = runner.intent or FALLBACK
        confidence = runner.confidence
        state.consecutive_no_input = 0
        today = datetime.fromtimestamp(runner.now, tz=UTC).date()
        extraction = extract_slots(
            self.brain.domain, runner.parse,
            FormContext(state.active_form, state.requested_slot, today, settings.free_text_slots, state.last_action),
            settings.validators)
        answered = state.requested_slot in extraction.values  # trust a valid answer over intent
        bare = (None if state.active_form or state.pending_confirmation or state.last_completed_form
                else _bare_identifier(extraction.values, text, settings.bare_identifier_intents))
        if bare is not None:  # "48215" alone: the caller wants that order's status
            runner.parse = {**runner.parse, "intent": {"name": bare, "confidence": 1.0}}
            intent, confidence = bare, 1.0
        trusted = intent if confidence >= settings.human_request_confidence else None
        if handoff_rules.asks_for_human(None if answered else trusted, text):
            state.consecutive_fallbacks = 0
            runner.request_handoff(handoff_rules.CALLER_ASKED)
            return
        if intent == "repeat" and not answered and not _says_stop(text, settings.stop_words):  # "forget it"
            runner.repeat_last()
            return
        recent_form, state.last_completed_form = state.last_completed_form, None
        if state.pending_confirmation is not None and self._confirmation(runner, extraction):
            return
        if state.active_form and self._form_turn(runner, extraction, text):
            return
        if recent_form and self._correction(runner, extraction, recent_form):
            return
        state.slots.update(extraction.values)
        if intent in settings.not_understood_intents:
            self._not_understood(runner, intent)
            return
        state.consecutive_fallbacks = 0
        if intent in settings.ending_intents and not self._sure_goodbye(runner):
            self._confirm_goodbye(runner)
            return
        general = settings.general_answers.get(intent)
        if general and not extraction.values and is_general_question(text) and self.brain.renderer.has(general[0]):
            self._answer_in_general(runner, *general)
            return
        runner.handle_intent(intent, confidence)

    def no_input(self, runner: TurnRunner) -> None:
        state = runner.state
        state.consecutive_no_input += 1
        if state.consecutive_no_input >= self.brain.settings.no_input_before_ivr:
            state.consecutive_no_input = 0
            self.ivr.escalate(runner, "no input from the caller")
            return
        runner.say("utter_no_input")
        if state.last_bot_messages:
            runner.say_text(state.last_bot_messages[-1])

    # Steps

    def _sure_goodbye(self, runner: TurnRunner) -> bool:
        """A goodbye the bot may act on: confident, and not the caller's first words."""
        spoken = sum(1 for turn in runner.state.transcript if turn.role == "user")
        return runner.confidence >= self.brain.settings.goodbye_confidence and spoken > 1

    def _answer_in_general(self, runner: TurnRunner, response: str, form: str) -> None:
        """The policy answer, then "shall I check a specific order?" (yes opens the form)."""
        runner.say(response)
        runner.say("utter_offer_order_check")
        prompt = runner.out.messages[-1] if runner.out.messages else ""
        runner.state.pending_confirmation = PendingConfirmation(form, prompt, "utter_how_can_i_help")
        runner.state.last_action = "utter_offer_order_check"

    def _confirm_goodbye(self, runner: TurnRunner) -> None:
        """Ask before hanging up: yes ends the call (`utter_goodbye`), no asks what else."""
        runner.say("utter_confirm_goodbye")
        prompt = runner.out.messages[-1] if runner.out.messages else ""
        runner.state.pending_confirmation = PendingConfirmation("utter_goodbye", prompt, "utter_how_can_i_help")
        runner.state.last_action = "utter_confirm_goodbye"

    def _not_understood(self, runner: TurnRunner, intent: str) -> None:
        """Answer (utter_default, out of scope...); escalate after too many in a row."""
        state = runner.state
        state.consecutive_fallbacks += 1
        if state.consecutive_fallbacks >= self.brain.settings.fallbacks_before_escalation:
            state.consecutive_fallbacks = 0
            self.ivr.escalate(runner, "speech not understood")
            return
        runner.handle_intent(intent, runner.confidence)

    def _confirmation(self, runner: TurnRunner, extraction: Extraction) -> bool:
        """Yes runs the pending action, no drops it, a new value asks again."""
        state = runner.state
        pending = state.pending_confirmation
        assert pending is not None
        state.pending_confirmation = None
        changed = {k: v for k, v in extraction.values.items()
                   if k in self.brain.domain.entities and state.slots.get(k) != v}
        if changed:
            state.slots.update(extraction.values)
            runner.run_action(pending.action)
        elif runner.intent == "affirm":
            runner.run_action(pending.action, confirmed=True)
        elif runner.intent == "deny":
            runner.run_action(pending.on_deny or "utter_how_can_i_help")
        else:
            return False
        return True

    def _form_turn(self, runner: TurnRunner, extraction: Extraction, text: str) -> bool:
        """Handle the message inside the active form; False if it leaves the form."""
        state, settings = runner.state, self.brain.settings
        form = self.brain.domain.forms[state.active_form or ""]
        slot = state.requested_slot or ""
        intent = runner.intent or FALLBACK
        leaves = self._leaves_form(runner, form.ignored_intents)
        if slot in extraction.values and _takes_whole_text(self.brain, slot):
            # The whole answer is this slot's value (the security answer): its digits are no order number.
            extraction = Extraction({slot: extraction.values[slot]})
        elif leaves or intent == "deny":  # a bare answer is only trusted inside the form's topic
            extraction = Extraction({k: v for k, v in extraction.values.items()
                                     if k not in extraction.guessed}, extraction.invalid)
        stop = _says_stop(text, settings.stop_words)
        if stop and leaves:  # "never mind, where is my order 48215": the new request, not the old form
            runner.deactivate_form()
            return False
        if any(name in form.required_slots for name in extraction.values):
            state.slots.update(extraction.values)
            runner.activate_form(form.name)
            return True
        if intent == "deny" or stop:
            runner.deactivate_form()
            runner.say("utter_form_stopped")
            runner.run_action("utter_how_can_i_help")
            return True
        if slot in extraction.invalid:
            self._form_failure(runner, slot, extraction.invalid[slot])
            return True
        if leaves:
            runner.deactivate_form()
            return False
        interjection = self.brain.policy.predict_in_form(intent, state.active_form or "",
                                                         state.slots, state.last_action)
        if interjection is not None:
            runner.run_actions(interjection.actions)
            return True
        if intent in settings.small_talk_intents:
            runner.handle_intent(intent, runner.confidence)
            if runner.out.handoff is None and not runner.out.hangup:
                runner.ask_slot(slot)
            return True
        self._form_failure(runner, slot, None)
        return True

    def _leaves_form(self, runner: TurnRunner, ignored: tuple[str, ...]) -> bool:
        """A confident intent with its own rule, other than the form's own, changes topic."""
        settings = self.brain.settings
        intent, state = runner.intent or FALLBACK, runner.state
        if (intent in CORRECTION_INTENTS or intent in ignored or intent == "repeat"
                or intent in settings.small_talk_intents
                or intent in settings.not_understood_intents
                or runner.confidence < settings.topic_change_confidence):
            return False
        rule = self.brain.policy.predict(PolicyInput(intent, (), None, state.slots, None))
        return rule is not None and state.active_form not in rule.actions

    def _form_failure(self, runner: TurnRunner, slot: str, raw: Any) -> None:
        state = runner.state
        failures = state.form_failures.get(slot, 0) + 1
        state.form_failures[slot] = failures
        if failures >= self.brain.settings.form_failures_before_handoff:
            runner.request_handoff(handoff_rules.FORM_FAILED)
            return
        invalid = f"utter_invalid_{slot}"
        if raw is not None:
            runner.say(invalid if self.brain.renderer.has(invalid) else "utter_invalid_generic",
                       {slot: raw})
        else:
            runner.say("utter_default")
        runner.ask_slot(slot)

    def _correction(self, runner: TurnRunner, extraction: Extraction, form_name: str) -> bool:
        """'No, it's 48215' right after a form: fix the slot and redo the form's result."""
        state = runner.state
        form = self.brain.domain.forms.get(form_name)
        intent = runner.intent or FALLBACK
        if form is None:
            return False
        changed = [k for k, v in extraction.values.items()
                   if k in form.required_slots and state.slots.get(k) != v]
        new_request = (intent not in CORRECTION_INTENTS
                       and intent not in self.brain.settings.not_understood_intents
                       and self.brain.policy.has_rule_for(intent))
        if not changed or new_request:
            return False
        state.slots.update(extraction.values)
        state.last_completed_form = form_name
        runner.run_actions(self.brain.policy.submit_actions(form_name, state.slots))
        return True


def _takes_whole_text(brain: EngineParts, slot: str) -> bool:
    definition = brain.domain.slots.get(slot)
    return definition is not None and any(m.type == "from_text" for m in definition.mappings)


def _says_stop(text: str, stop_words: tuple[str, ...]) -> bool:
    lowered = text.lower()
    return any(w in lowered if han_count(w) else re.search(rf"\b{re.escape(w)}\b", lowered) for w in stop_words)


_ZH_ID_FILLERS = "订单维修号码编是的那个嗯呃喂我就呢啊吧哦噢好，。？！ ,.?!：:"
_ID_FILLERS = frozenset({"order", "number", "repair", "it's", "its", "it", "is", "my", "the", "uh", "um", "er",
                         "ok", "okay", "ref", "reference"})


def _bare_identifier(values: dict[str, Any], text: str, intents: dict[str, str]) -> str | None:
    """The intent a message made of one identifier and fillers stands for ("48215" -> the order's status)."""
    found = [slot for slot in intents if slot in values]
    if len(found) != 1:
        return None
    if han_count(text):  # "订单号是四八二一五": what is left without the number and the fillers
        rest = chinese_to_digits(text).replace(str(values[found[0]]), "")
        return intents[found[0]] if not rest.strip(_ZH_ID_FILLERS) else None
    words = [w for w in re.split(r"[\s,.!?:;#]+", text.lower()) if w]
    leftover = [w for w in words if w not in _ID_FILLERS and not any(c.isdigit() for c in w)
                and w != str(values[found[0]]).lower() and len(w) > 1]
    return intents[found[0]] if not leftover else None

