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


class RasaBrain:
    """Each turn goes to a Rasa 3.6 server's REST channel; our actions are served to it."""

    def __init__(self, client_url: str, timeout: float, actions: ActionServer) -> None:
        self.url, self.timeout = client_url, timeout
        self._actions = actions

    def rest(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        sender, message = str(body.get("sender") or "default"), str(body.get("message") or "")

        async def send() -> list[dict[str, Any]]:
            async with RasaClient(self.url, timeout=self.timeout) as client:
                return await client.send(sender, message)

        try:
            return asyncio.run(send())
        except RasaUnavailable as exc:  # the reason goes to the log, never to the sender (it names our servers)
            log.error("REST channel: %s", exc)
            return [{"recipient_id": sender, "text": "Sorry, I can't help right now."}]

    def action_server(self, body: Any) -> tuple[int, dict[str, Any]]:
        reply = self._actions.handle(body)
        return reply.status, reply.body


def build_brain(settings: Settings, interpreter: Interpreter) -> Brain:
    engine = build_dialogue(settings, interpreter)
    if settings.brain == "rasa":
        actions = action_server(settings, engine, build_registry(settings.remote_actions))
        return RasaBrain(settings.rasa_url, settings.rasa_timeout, actions)
    return BuiltinBrain(engine, action_server(settings, engine, engine.brain.actions))


class LazyBrain:
    """The app's brain, built on first use (it loads the domain and back office), once; a builtin brain's engine
    goes to `on_engine` (the trainer's workbench: its turns feed the inbox, it follows model activations)."""

    def __init__(self, settings: Settings, interpreter: Interpreter,
                 on_engine: Callable[[DialogueEngine], None] | None = None) -> None:
        self.settings, self.interpreter, self.on_engine = settings, interpreter, on_engine
        self._brain: Brain | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Brain:
        with self._lock:
            if self._brain is None:
                self._brain = built = build_brain(self.settings, self.interpreter)
                if isinstance(built, BuiltinBrain) and self.on_engine is not None:
                    self.on_engine(built.engine)
            return self._brain
