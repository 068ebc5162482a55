"""The dialogue engine: one call per caller event, state loaded and saved every turn."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.dialogue.actions.registry import ActionRegistry
from bot.dialogue.handoff import HandoffDecision
from bot.dialogue.ivr_bridge import IvrBridge
from bot.dialogue.languages import language_keys, language_menu
from bot.dialogue.policy import RulePolicy
from bot.dialogue.responses import ResponseRenderer
from bot.dialogue.settings import DialogueSettings
from bot.dialogue.speech import SpeechTurn, clean_text, safe_parse
from bot.dialogue.state import ConversationState, IntentSeen, Turn
from bot.dialogue.store import InMemorySessionStore, SessionStore
from bot.dialogue.swap import SwapLock
from bot.dialogue.turn import EngineParts, TurnRunner
from bot.ivr.engine import IvrEngine
from bot.training_data.model import Domain, Rule

log = logging.getLogger(__name__)
DTMF_KEYS = "0123456789*#"


class Interpreter(Protocol):
    """Anything that parses text into Rasa's parse-result dict."""

    def parse(self, text: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class TurnDebug:
    """What the bot understood and where the conversation stands (for `--debug`)."""

    intent: str | None = None
    confidence: float | None = None
    entities: tuple[dict[str, Any], ...] = ()
    slots: dict[str, Any] = field(default_factory=dict)
    active_form: str | None = None
    requested_slot: str | None = None
    mode: str = "speech"
    ivr_menu: str | None = None
    ivr_path: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()


@dataclass(frozen=True)
class RemoteTurn:
    """What another brain (a Rasa server) made of one caller utterance."""

    intent: dict[str, Any]  # {"name", "confidence"}
    entities: tuple[dict[str, Any], ...] = ()
    messages: tuple[str, ...] = ()
    slots: dict[str, Any] = field(default_factory=dict)
    actions: tuple[str, ...] = ()
    handoff_reason: str | None = None  # the brain handed the caller over ("": for the reason the words give)
    hangup: bool = False  # the brain ended the conversation


@dataclass(frozen=True)
class BotTurn:
    """The bot's answer to one caller event."""

    messages: tuple[str, ...]
    handoff: HandoffDecision | None = None
    hangup: bool = False
    ivr_active: bool = False
    ivr_timeout: float | None = None  # seconds to wait for a key while the IVR is active
    expects_yes_no: bool = False  # the bot asked a yes/no question (voice ends the caller's turn sooner)
    actions: tuple[str, ...] = ()
    debug: TurnDebug = field(default_factory=TurnDebug)
    language: str = "en"  # the language the bot answered in (the voice speaks and listens in it)

    @property
    def text(self) -> str:
        return " ".join(self.messages)


class TurnObserver(Protocol):
    """Told about every caller text turn and what the bot made of it (the trainer's inbox listens)."""

    def __call__(self, sender_id: str, channel: str, text: str, turn: BotTurn) -> None: ...


class DialogueEngine:
    """Runs the domain (rules, forms, responses, actions) plus handoff and IVR fallback."""

    def __init__(
        self,
        domain: Domain,
        rules: list[Rule],
        interpreter: Interpreter,
        actions: ActionRegistry | None = None,
        ivr: IvrEngine | None = None,
        store: SessionStore | None = None,
        settings: DialogueSettings | None = None,
        now: Callable[[], float] = time.time,
        *,
        backoffice: Any = None,
        redact: Callable[[str], str] | None = None,
        ivr_translations: dict[str, IvrEngine] | None = None,
    ) -> None:
        self.settings = settings or DialogueSettings()
        # Applied to the keys a caller types (a run of them, so a card number typed key by key is caught whole)
        self.redact: Callable[[str], str] = redact or (lambda text: text)
        self.brain = EngineParts(domain=domain, policy=RulePolicy.from_rules(domain, rules),
                           renderer=ResponseRenderer(domain), actions=actions or ActionRegistry(),
                           settings=self.settings, backoffice=backoffice)
        self.interpreter = interpreter
        self.store: SessionStore = store if store is not None else InMemorySessionStore()
        self.now = now
        self.ivr = IvrBridge(ivr, self.brain, ivr_translations)
        self.speech = SpeechTurn(self.brain, self.ivr)
        self.turn_observers: list[TurnObserver] = []
        self.parts_lock = SwapLock()  # a turn runs on one set of parts; `replace_parts` swaps between turns

    def take_parts(self, other: DialogueEngine) -> None:
        """Take `other`'s domain, rules, responses, actions and IVR (a new model's); sessions are kept.
        Call it inside `parts_lock.swap()`, so the turns in progress finish on the old parts."""
        self.brain, self.ivr, self.speech = other.brain, other.ivr, other.speech

    # Public API: one method per caller event

    def start(self, sender_id: str, caller_number: str | None = None,
              channel: str = "voice", language: str | None = None) -> BotTurn:
        """A new call: fresh state and the greeting; `language` is the dialled line's (its callers hear it
        first and get no language menu; one who speaks another of the languages is still followed)."""
        with self.parts_lock.turn():
            return self._start(sender_id, caller_number, channel, language)

    def _start(self, sender_id: str, caller_number: str | None, channel: str, language: str | None = None) -> BotTurn:
        now = self.now()
        state = ConversationState.new(sender_id, now=now, caller_number=caller_number,
                                      channel=channel)
        if language in self.settings.languages:
            state.language = language
        runner = TurnRunner(self.brain, state, {}, now)
        runner.run_action("utter_greet")
        return self._finish(state, runner)

    def handle_text(self, sender_id: str, text: str, caller_number: str | None = None,
                    channel: str | None = None) -> BotTurn:
        """The caller said (or typed) something."""
        with self.parts_lock.turn():
            state = self._begin(sender_id, caller_number, channel)
            cleaned = clean_text(text, self.settings.max_text_chars)
            if not cleaned:
                return self._no_input(state)
            runner = TurnRunner(self.brain, state, {"text": cleaned}, state.last_activity_at)
            turn = self._guarded(state, runner, lambda: self._on_text(runner, cleaned))
        self._observed(state, cleaned, turn)
        return turn

    def _observed(self, state: ConversationState, text: str, turn: BotTurn) -> None:
        for observer in self.turn_observers:
            try:
                observer(state.sender_id, state.channel, text, turn)
            except Exception:  # an observer never breaks a conversation
                log.exception("turn observer failed")

    def handle_remote_turn(self, sender_id: str, text: str, remote: RemoteTurn,
                           caller_number: str | None = None, channel: str | None = None) -> BotTurn:
        """A spoken turn another brain (a Rasa server) answered: kept in this conversation like our own turns,
        so keys, silences, the IVR, the handoff context and the call records work the same on either brain.
        Two "not understood" turns in a row still open the IVR on voice channels."""
        with self.parts_lock.turn():
            state = self._begin(sender_id, caller_number, channel)
            cleaned = clean_text(text, self.settings.max_text_chars)
            turn = self._remote_turn(state, cleaned, remote)
        self._observed(state, cleaned, turn)
        return turn

    def _remote_turn(self, state: ConversationState, cleaned: str, remote: RemoteTurn) -> BotTurn:
        parse = {"text": cleaned, "intent": dict(remote.intent), "entities": list(remote.entities)}
        runner = TurnRunner(self.brain, state, parse, state.last_activity_at)

        def act() -> None:
            self._record_user(state, cleaned, parse)
            state.slots.update({k: v for k, v in remote.slots.items() if k in self.brain.domain.slots})
            if runner.intent in self.settings.not_understood_intents:
                state.consecutive_fallbacks += 1
                if (state.consecutive_fallbacks >= self.settings.fallbacks_before_escalation
                        and state.channel in self.settings.voice_channels):
                    state.consecutive_fallbacks = 0
                    self.ivr.escalate(runner, "speech not understood")
                    return
            else:
                state.consecutive_fallbacks = 0
            for message in remote.messages:
                runner.say_text(message)
            runner.out.actions.extend(remote.actions)
            if remote.handoff_reason is not None:  # "" : the engine says why, from the caller's words
                runner.request_handoff(remote.handoff_reason, intent=runner.intent, announce=False)
            elif remote.hangup:
                runner.out.hangup = True

        return self._guarded(state, runner, act)

    def handle_dtmf(self, sender_id: str, keys: str, caller_number: str | None = None,
                    channel: str | None = None) -> BotTurn:
        """The caller pressed keys; any key outside the IVR opens it."""
        with self.parts_lock.turn():
            state = self._begin(sender_id, caller_number, channel)
            pressed = "".join(k for k in keys if k in DTMF_KEYS)
            self._record_keys(state, pressed or keys[:32])
            runner = TurnRunner(self.brain, state, {"text": ""}, state.last_activity_at)
            return self._guarded(state, runner, lambda: self._on_dtmf(runner, pressed))

    def handle_no_input(self, sender_id: str) -> BotTurn:
        """The caller said nothing before the timeout."""
        with self.parts_lock.turn():
            return self._no_input(self._begin(sender_id, None, None))

    def speech_unavailable(self, sender_id: str, caller_number: str | None = None,
                           channel: str | None = None) -> BotTurn:
        """ASR or NLU is down: continue in the DTMF menu (or hand over without one)."""
        with self.parts_lock.turn():
            state = self._begin(sender_id, caller_number, channel)
            state.transcript.append(Turn("system", "speech unavailable", state.last_activity_at))
            runner = TurnRunner(self.brain, state, {}, state.last_activity_at)

            def act() -> None:
                if state.mode in ("ivr", "handoff", "ended"):
                    return  # already on the keypad (or with a person): nothing to say again
                runner.say("utter_speech_unavailable")
                self.ivr.escalate(runner, "speech services unavailable", announce=False, any_channel=True)

            return self._guarded(state, runner, act)

    def state_of(self, sender_id: str) -> ConversationState | None:
        return self.store.load(sender_id)

    # Caller events

    def _on_text(self, runner: TurnRunner, text: str) -> None:
        state = runner.state
        if state.mode == "handoff":
            self._record_user(state, text, None)
            runner.say("utter_handoff_waiting")
            return
        parse = safe_parse(self.interpreter, text, state.language, self.settings.languages)
        if parse.get("language") in self.settings.languages:
            state.language = parse["language"]  # a caller who switches language is answered in the new one
        if state.mode == "ivr" and not self.ivr.spoken_way_out(runner, parse):
            self._record_user(state, text, parse)
            self.ivr.reprompt(runner)
            return
        self._record_user(state, text, parse)
        runner.parse = parse
        self.speech.respond(runner, text)

    def _on_dtmf(self, runner: TurnRunner, keys: str) -> None:
        state = runner.state
        chosen = language_keys(self.settings.languages).get(keys.rstrip("#"))
        if state.language_offered and state.language is None and state.mode == "speech" and chosen:
            state.language = chosen  # the language menu's answer
            runner.say("utter_how_can_i_help")
            return
        if state.mode == "handoff":
            runner.say("utter_handoff_waiting")
        elif state.mode == "ivr":
            self.ivr.press(runner, keys)
        elif self._typed_slot_value(runner, keys):
            pass
        else:
            self.ivr.open_with_keys(runner, keys)

    def _typed_slot_value(self, runner: TurnRunner, keys: str) -> bool:
        """Digits typed while a form asks for a number fill that slot directly."""
        state = runner.state
        digits = keys.rstrip("#")
        if not (state.active_form and state.requested_slot and len(digits) > 1
                and digits.isdigit()):
            return False
        runner.parse = {"text": digits, "intent": {"name": "inform", "confidence": 1.0},
                        "entities": []}
        self.speech.respond(runner, digits)
        return True

    def _no_input(self, state: ConversationState) -> BotTurn:
        state.transcript.append(Turn("system", "no input", state.last_activity_at))
        runner = TurnRunner(self.brain, state, {}, state.last_activity_at)

        def act() -> None:
            if state.mode == "ivr":
                self.ivr.timeout(runner)
            elif state.mode == "handoff":
                runner.say("utter_handoff_waiting")
            else:
                self.speech.no_input(runner)
                self._offer_languages(runner)

        return self._guarded(state, runner, act)

    def _offer_languages(self, runner: TurnRunner) -> None:
        """A caller silent at the start of a call on a line with several languages hears the language menu
        ("中文服务请按1。For English, press 2."), once; a key from it sets the call's language."""
        state = runner.state
        if (len(self.settings.languages) > 1 and state.language is None and not state.language_offered
                and state.mode == "speech" and not runner.out.hangup and runner.out.handoff is None
                and state.channel in self.settings.voice_channels
                and not any(t.role == "user" and (t.text or t.dtmf) for t in state.transcript)):
            state.language_offered = True
            runner.say_text(language_menu(self.settings.languages))

    # Turn plumbing

    def _begin(self, sender_id: str, caller_number: str | None,
               channel: str | None) -> ConversationState:
        now = self.now()
        try:
            state = self.store.load(sender_id)
        except (ValueError, TypeError, KeyError):
            log.exception("unreadable state for %s; starting over", sender_id)
            state = None
        if state is None:
            state = ConversationState.new(sender_id, now=now, channel=channel or "rest")
        elif self._expired(state, now) or state.mode == "ended":
            state = self._new_session(state, now)
        state.caller_number = caller_number or state.caller_number
        state.channel = channel or state.channel
        state.last_activity_at = now
        return state

    def _expired(self, state: ConversationState, now: float) -> bool:
        minutes = self.brain.domain.session_config.session_expiration_time
        return minutes > 0 and now - state.last_activity_at > minutes * 60

    def _new_session(self, old: ConversationState, now: float) -> ConversationState:
        state = ConversationState.new(old.sender_id, now=now, caller_number=old.caller_number,
                                      channel=old.channel)
        state.session_count = old.session_count + 1
        if self.brain.domain.session_config.carry_over_slots_to_new_session:
            state.slots = {k: v for k, v in old.filled_slots().items()
                           if k not in self.settings.session_only_slots}
        state.transcript.append(Turn("system", "new session", now))
        return state

    def _record_keys(self, state: ConversationState, keys: str) -> None:
        """Keys since the caller last spoke are one transcript line (the bot's prompts in between do not
        split it), redacted as a whole: never a card number spread over sixteen one-key lines."""
        last = next((t for t in reversed(state.transcript) if t.role == "user"), None)
        if last is not None and last.dtmf is not None and not last.text:
            if last.dtmf.endswith("]") and keys.isdigit():
                return  # the run so far was redacted ("[phone]"): its next digits go with it
            last.dtmf = self.redact(last.dtmf + keys)
        else:
            state.transcript.append(Turn("user", "", state.last_activity_at, dtmf=self.redact(keys)))

    def _record_user(self, state: ConversationState, text: str,
                     parse: dict[str, Any] | None) -> None:
        intent = (parse or {}).get("intent") or {}
        name, confidence = intent.get("name"), intent.get("confidence")
        conf = float(confidence) if isinstance(confidence, (int, float)) else None
        state.transcript.append(Turn("user", text, state.last_activity_at, name, conf))
        if name:
            state.intents_seen.append(IntentSeen(str(name), conf or 0.0, state.last_activity_at))

    def _guarded(self, state: ConversationState, runner: TurnRunner,
                 act: Callable[[], None]) -> BotTurn:
        try:
            act()
        except Exception:
            if self.settings.raise_errors:
                raise
            log.exception("turn failed for %s", state.sender_id)
            runner.say("utter_action_failed")
            runner.request_handoff("internal_error")
        return self._finish(state, runner)

    def _finish(self, state: ConversationState, runner: TurnRunner) -> BotTurn:
        out = runner.out
        state.transcript.extend(Turn("bot", m, state.last_activity_at) for m in out.messages)
        if out.messages and not out.repeated:
            state.last_bot_messages = list(out.messages)
        if out.handoff is not None:
            state.set_mode("handoff")
            state.latest_handoff = out.handoff.to_dict()
        if out.hangup:
            state.set_mode("ended")
        self.store.save(state)
        ivr = self.ivr.current(state)
        parse = runner.parse
        intent = parse.get("intent") or {}
        return BotTurn(
            messages=tuple(out.messages),
            handoff=out.handoff,
            hangup=out.hangup,
            ivr_active=state.mode == "ivr",
            ivr_timeout=out.ivr_timeout if state.mode == "ivr" else None,
            expects_yes_no=state.pending_confirmation is not None or (
                bool(out.messages) and self.brain.policy.asks_yes_no(state.last_action)),
            actions=tuple(out.actions),
            language=state.language or self.settings.default_language,
            debug=TurnDebug(
                intent=intent.get("name"), confidence=intent.get("confidence"),
                entities=tuple(dict(e) for e in parse.get("entities") or []),
                slots=state.filled_slots(), active_form=state.active_form,
                requested_slot=state.requested_slot, mode=state.mode,
                ivr_menu=ivr.menu if ivr is not None and ivr.active else None,
                ivr_path=tuple(state.ivr_path), actions=tuple(out.actions),
            ),
        )

