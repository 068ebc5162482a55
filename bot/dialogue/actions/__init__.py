"""Custom actions: the registry, the demo actions and the remote-action client."""

from bot.dialogue.actions.registry import (
    ActionContext,
    ActionFn,
    ActionRegistry,
    ActionRunner,
    UnknownAction,
)

__all__ = ["ActionContext", "ActionFn", "ActionRegistry", "ActionRunner", "UnknownAction"]
