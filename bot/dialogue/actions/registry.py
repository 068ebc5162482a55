"""Custom actions: Python functions registered by name, run with a read-only context."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, overload

from bot.dialogue.events import Event
from bot.dialogue.state import ConversationState
from bot.training_data.model import Domain


@dataclass(frozen=True)
class ActionContext:
    """What an action may look at; it changes the conversation only by returning events."""

    state: ConversationState
    domain: Domain
    backoffice: Any
    latest_message: Mapping[str, Any] = field(default_factory=dict)
    confirmed: bool = False  # True when the caller just said yes to this action's question
    now: float = 0.0
    # The calling number as the phone network gave it (voice channels only; never from a text channel's
    # body or a Rasa tracker, which the sender controls): enough to verify the caller.
    network_number: str | None = None
    verification_attempts: int = 3  # wrong answers to the security question before the bot refuses

    def slot(self, name: str) -> Any:
        return self.state.slots.get(name)

    @property
    def intent(self) -> str | None:
        intent = self.latest_message.get("intent") or {}
        name = intent.get("name") if isinstance(intent, Mapping) else None
        return str(name) if name else None


ActionFn = Callable[[ActionContext], list[Event]]


class ActionRunner(Protocol):
    """Something that runs an action by name (a remote action server, for instance)."""

    def run(self, name: str, context: ActionContext) -> list[Event]: ...


class UnknownAction(KeyError):
    """Raised when asked to run an action nobody registered."""


class ActionRegistry:
    """Actions by name, local functions or served remotely."""

    def __init__(self) -> None:
        self._local: dict[str, ActionFn] = {}
        self._remote: dict[str, ActionRunner] = {}

    @overload
    def register(self, name: str) -> Callable[[ActionFn], ActionFn]: ...

    @overload
    def register(self, name: str, fn: ActionFn) -> ActionFn: ...

    def register(self, name: str, fn: ActionFn | None = None) -> Any:
        """`register(name, fn)`, or `@registry.register(name)` as a decorator."""
        if fn is not None:
            self._local[name] = fn
            return fn

        def decorate(func: ActionFn) -> ActionFn:
            self._local[name] = func
            return func

        return decorate

    def serve_remotely(self, name: str, runner: ActionRunner) -> None:
        """Run `name` on another action server instead of locally."""
        self._remote[name] = runner

    def __contains__(self, name: object) -> bool:
        return name in self._local or name in self._remote

    def names(self) -> list[str]:
        return sorted({*self._local, *self._remote})

    def local_names(self) -> list[str]:
        return sorted(self._local)

    def run(self, name: str, context: ActionContext) -> list[Event]:
        if name in self._remote:
            return self._remote[name].run(name, context)
        if name in self._local:
            return list(self._local[name](context))
        raise UnknownAction(name)

    def run_local(self, name: str, context: ActionContext) -> list[Event]:
        """Run a locally registered action (what our action server exposes)."""
        if name not in self._local:
            raise UnknownAction(name)
        return list(self._local[name](context))
