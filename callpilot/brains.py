"""The two brains behind the text channels and voice calls: callpilot's own dialogue engine, or a Rasa server."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from bot.dialogue.action_server import ActionServer
from bot.dialogue.actions.registry import ActionRegistry
from bot.dialogue.channels import rest_webhook
from bot.dialogue.engine import DialogueEngine, Interpreter
from bot.dialogue.factory import build_engine, build_registry
from bot.dialogue.settings import DialogueSettings
from bot.dialogue.store import InMemorySessionStore, SessionStore
from bot.dialogue.verification_seal import VerificationSeal
from bot.nlu.storage import active_id
from bot.rasa_brain.client import RasaClient, RasaUnavailable
from callpilot.rasa_voice import RasaDialogue
from callpilot.records.redaction import redact_stored
from callpilot.settings import Settings
from handoff import build_session_store

log = logging.getLogger("callpilot.brains")


class Brain(Protocol):
    """What the web app needs from a brain."""

    def rest(self, body: dict[str, Any]) -> list[dict[str, Any]]: ...

    def action_server(self, body: Any) -> tuple[int, dict[str, Any]]: ...


def dialogue_settings(settings: Settings) -> DialogueSettings:
    return DialogueSettings(
        fallbacks_before_escalation=settings.fallbacks_before_escalation,
        no_input_before_ivr=settings.no_input_before_ivr,
        form_failures_before_handoff=settings.form_failures_before_handoff,
        verification_attempts=settings.verification_attempts,
        max_text_chars=settings.max_text_chars,
        languages=tuple(settings.languages),
    )


def session_store(settings: Settings) -> SessionStore:
    """With `redis_url` set, conversation states live in Redis (with a TTL), so several processes (and a
    restart) share them; otherwise in this process's memory, bounded by the same TTL and `session_store_max`."""
    if settings.redis_url:
        return build_session_store(settings)
    return InMemorySessionStore(max_sessions=settings.session_store_max, ttl_s=settings.handoff.session_ttl_s)


def action_server(settings: Settings, engine: DialogueEngine, registry: ActionRegistry) -> ActionServer:
    """Our actions for a Rasa server; verifications travel in its tracker sealed with `verification_secret`."""
    domain = engine.brain.domain
    seal = VerificationSeal(settings.verification_secret.encode() if settings.verification_secret else None,
                            max_age_s=max(domain.session_config.session_expiration_time, 1) * 60.0)
    return ActionServer(registry, domain, engine.brain.backoffice, now=engine.now, seal=seal,
                        verification_attempts=settings.verification_attempts)


def build_dialogue(settings: Settings, interpreter: Interpreter, *, data_dir: Path | None = None,
                   store: SessionStore | None = None) -> DialogueEngine:
    """The dialogue engine on the settings' session store (see `session_store`), from `data_dir` (default: the
    data the active model went live with, see `live_data_dir`)."""
    return build_engine(
        data_dir or live_data_dir(settings),
        interpreter,
        store=store if store is not None else session_store(settings),
        settings=dialogue_settings(settings),
        remote_actions=settings.remote_actions,
        redact=redact_stored,
    )


def live_data_dir(settings: Settings) -> Path:
    """The domain, rules, responses and IVR to run: those snapshotted with the active model when it was trained
    on the trainer's workbench (so a roll-back brings back its responses too), else `data_dir`."""
    model_id = active_id(settings.models_dir)
    if model_id is None:
        return settings.data_dir
    folder = settings.models_dir / model_id
    return folder / "data" if (folder / "trainer.json").exists() and (folder / "data").is_dir() else settings.data_dir


def voice_dialogue(settings: Settings, engine: DialogueEngine) -> DialogueEngine | RasaDialogue:
    """What voice calls talk to: the engine itself, or (`brain: rasa`) the Rasa server in front of it."""
    if settings.brain == "rasa":
        return RasaDialogue(engine, settings.rasa_url, settings.rasa_timeout)
    return engine


class BuiltinBrain:
    """callpilot's dialogue engine on the local NLU model."""

    def __init__(self, engine: DialogueEngine, actions: ActionServer | None = None) -> None:
        self.engine = engine
        self._actions = actions or ActionServer(engine.brain.actions, engine.brain.domain, engine.brain.backoffice,
                                                now=engine.now)

    def rest(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        return rest_webhook(self.engine, body)

    def action_server(self, body: Any) -> tuple[int, dict[str, Any]]:
        reply = self._actions.handle(body)
        return reply.status, reply.body


class HeardTurn(Protocol):
    """Where a Rasa server's reading of each caller turn goes (the trainer's inbox: `InboxRecorder.heard`)."""

    def __call__(self, sender_id: str, channel: str, text: str, intent: str | None, confidence: float | None, *,
                 handed_over: bool = False) -> None: ...


def rasa_reading(tracker: dict[str, Any]) -> tuple[str | None, float | None, bool]:
    """From a Rasa tracker: the intent and confidence of the latest user message, and whether the bot handed the
    caller over after it (`action_handoff`)."""
    latest = tracker.get("latest_message") or {}
    intent = latest.get("intent") or {}
    name = intent.get("name") if isinstance(intent, dict) else None
    confidence = intent.get("confidence") if isinstance(intent, dict) else None
    events = tracker.get("events") or []
    last_user = max((i for i, e in enumerate(events) if isinstance(e, dict) and e.get("event") == "user"), default=-1)
    handed_over = any(isinstance(e, dict) and e.get("event") == "action" and e.get("name") == "action_handoff"
                      for e in events[last_user + 1:])
    return (str(name) if name else None, float(confidence) if isinstance(confidence, int | float) else None,
            handed_over)


class RasaBrain:
    """Each turn goes to a Rasa 3.6 server's REST channel; our actions are served to it. With `heard`, what Rasa's
    NLU made of each caller turn (read from the conversation's tracker) goes there too: the trainer's inbox."""

    def __init__(self, client_url: str, timeout: float, actions: ActionServer, heard: HeardTurn | None = None) -> None:
        self.url, self.timeout = client_url, timeout
        self._actions = actions
        self.heard = heard

    def rest(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        sender, message = str(body.get("sender") or "default"), str(body.get("message") or "")

        async def send() -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
            async with RasaClient(self.url, timeout=self.timeout) as client:
                replies = await client.send(sender, message)
                if self.heard is None:
                    return replies, None
                try:
                    return replies, await client.tracker(sender)
                except RasaUnavailable as exc:  # the answer still goes out; only the inbox misses this turn
                    log.warning("REST channel: no tracker for the inbox: %s", exc)
                    return replies, None

        try:
            replies, tracker = asyncio.run(send())
        except RasaUnavailable as exc:  # the reason goes to the log, never to the sender (it names our servers)
            log.error("REST channel: %s", exc)
            return [{"recipient_id": sender, "text": "Sorry, I can't help right now."}]
        if self.heard is not None and tracker is not None:
            intent, confidence, handed_over = rasa_reading(tracker)
            self.heard(sender, "rest", message, intent, confidence, handed_over=handed_over)
        return replies

    def action_server(self, body: Any) -> tuple[int, dict[str, Any]]:
        reply = self._actions.handle(body)
        return reply.status, reply.body


def build_brain(settings: Settings, interpreter: Interpreter, *, heard: HeardTurn | None = None) -> Brain:
    """The builtin brain, or a Rasa server's (whose turns, with `heard`, also reach the trainer's inbox)."""
    engine = build_dialogue(settings, interpreter)
    if settings.brain == "rasa":
        actions = action_server(settings, engine, build_registry(settings.remote_actions))
        return RasaBrain(settings.rasa_url, settings.rasa_timeout, actions, heard)
    return BuiltinBrain(engine, action_server(settings, engine, engine.brain.actions))


class LazyBrain:
    """The app's brain, built on first use (it loads the domain and back office), once; a builtin brain's engine
    goes to `on_engine` (the trainer's workbench: its turns feed the inbox, it follows model activations), a Rasa
    brain's readings of the caller's turns to `heard` (the inbox too)."""

    def __init__(self, settings: Settings, interpreter: Interpreter,
                 on_engine: Callable[[DialogueEngine], None] | None = None, heard: HeardTurn | None = None) -> None:
        self.settings, self.interpreter, self.on_engine, self.heard = settings, interpreter, on_engine, heard
        self._brain: Brain | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Brain:
        with self._lock:
            if self._brain is None:
                self._brain = built = build_brain(self.settings, self.interpreter, heard=self.heard)
                if isinstance(built, BuiltinBrain) and self.on_engine is not None:
                    self.on_engine(built.engine)
            return self._brain
