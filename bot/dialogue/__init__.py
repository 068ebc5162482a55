"""The dialogue manager: rules, forms, responses, actions, handoff and the IVR fallback.

One `DialogueEngine` serves every caller; each caller's `ConversationState` is loaded
from a `SessionStore` at the start of a turn and saved at its end.
"""

from bot.dialogue.action_server import (
    ActionServer,
    ActionServerReply,
    RemoteActionClient,
    RemoteActionError,
    handle_action_server_request,
)
from bot.dialogue.actions import ActionContext, ActionRegistry
from bot.dialogue.channels import rest_webhook, run_chat
from bot.dialogue.conversation_tests import (
    ConversationResult,
    run_conversation_dir,
    run_conversation_file,
)
from bot.dialogue.engine import BotTurn, DialogueEngine, Interpreter, RemoteTurn, TurnDebug
from bot.dialogue.factory import build_engine, build_registry
from bot.dialogue.handoff import HandoffDecision, HandoffRule, HandoffSettings
from bot.dialogue.settings import DialogueSettings
from bot.dialogue.state import ConversationState
from bot.dialogue.store import InMemorySessionStore, SessionStore

__all__ = [
    "ActionContext",
    "ActionRegistry",
    "ActionServer",
    "ActionServerReply",
    "BotTurn",
    "ConversationResult",
    "ConversationState",
    "DialogueEngine",
    "DialogueSettings",
    "HandoffDecision",
    "HandoffRule",
    "HandoffSettings",
    "InMemorySessionStore",
    "Interpreter",
    "RemoteActionClient",
    "RemoteActionError",
    "RemoteTurn",
    "SessionStore",
    "TurnDebug",
    "build_engine",
    "build_registry",
    "handle_action_server_request",
    "rest_webhook",
    "run_chat",
    "run_conversation_dir",
    "run_conversation_file",
]
