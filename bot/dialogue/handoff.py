"""When to hand a caller to a human, to which skill, and what the agent is told."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from bot.dialogue.agent_note import write_note
from bot.dialogue.state import ConversationState

# Reasons
CALLER_ASKED = "caller_asked"
INTENT_NEEDS_AGENT = "intent_needs_agent"
REPEATED_FALLBACK = "repeated_fallback"
FORM_FAILED = "form_failed"
CONFIGURED_RULE = "configured_rule"
IVR_REQUEST = "ivr_request"
ACTION_REQUEST = "action_request"

_AGENT_WORDS = re.compile(
    r"\b(agent|representative|operator|human|real person|someone real)s?\b|人工|真人|客服人员|接线员", re.IGNORECASE)


@dataclass(frozen=True)
class HandoffRule:
    """A configured reason to hand over: this intent, at least this confident, to this skill."""

    intent: str
    skill: str | None = None  # None: the skill of the conversation's topic
    min_confidence: float = 0.0
    priority: int | None = None


DEFAULT_SKILL_BY_INTENT: dict[str, str] = {
    "check_order_status": "orders", "delivery_time": "orders", "change_delivery_address": "orders",
    "cancel_order": "orders", "return_policy": "returns", "refund_status": "returns",
    "track_repair": "tech", "technical_fault": "tech", "book_installation": "tech",
    "warranty_info": "tech", "billing_dispute": "billing", "invoice_request": "billing",
    "payment_methods": "billing",
}
DEFAULT_PRIORITY_BY_INTENT: dict[str, int] = {"complaint": 1, "billing_dispute": 2,
                                              "technical_fault": 2}
DEFAULT_INTENTS_NEEDING_AGENT: tuple[str, ...] = ("complaint", "billing_dispute",
                                                  "technical_fault")
HUMAN_REQUEST_INTENTS: tuple[str, ...] = ("talk_to_human", "request_human", "human_handoff")
DEFAULT_PRIORITY = 3


@dataclass(frozen=True)
class HandoffDecision:
    """A decision to transfer the call, with everything the agent needs to pick it up."""

    reason: str
    skill: str
    priority: int
    caller_number: str | None
    transcript: tuple[dict[str, Any], ...]
    intents: tuple[dict[str, Any], ...]
    slots: dict[str, Any]
    ivr_path: tuple[str, ...]
    summary: str
    sender_id: str = ""
    created_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["transcript"] = list(self.transcript)
        data["intents"] = list(self.intents)
        data["ivr_path"] = list(self.ivr_path)
        return data


@dataclass(frozen=True)
class HandoffSettings:
    """Which intents go to which skill, and which always need a human."""

    rules: tuple[HandoffRule, ...] = ()
    skill_by_intent: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_SKILL_BY_INTENT))
    priority_by_intent: dict[str, int] = field(
        default_factory=lambda: dict(DEFAULT_PRIORITY_BY_INTENT))
    intents_needing_agent: tuple[str, ...] = DEFAULT_INTENTS_NEEDING_AGENT
    default_skill: str = "general"


def handoff_settings_from_dict(data: Mapping[str, Any]) -> HandoffSettings:
    """Typed settings from config (`{rules: [{intent, skill, min_confidence, priority}],
    skills: {intent: skill}, priorities: {intent: n}, always: [intent...]}`)."""
    rules: list[HandoffRule] = []
    for raw in data.get("rules") or []:
        if not isinstance(raw, Mapping) or not raw.get("intent"):
            raise ValueError(f"handoff rule needs an intent: {raw!r}")
        priority = raw.get("priority")
        rules.append(HandoffRule(str(raw["intent"]), str(raw["skill"]) if raw.get("skill") else None,
                                 float(raw.get("min_confidence", 0.0)),
                                 int(priority) if priority is not None else None))
    defaults = HandoffSettings()
    return HandoffSettings(
        rules=tuple(rules),
        skill_by_intent={**defaults.skill_by_intent,
                         **{str(k): str(v) for k, v in dict(data.get("skills") or {}).items()}},
        priority_by_intent={**defaults.priority_by_intent,
                            **{str(k): int(v) for k, v in dict(data.get("priorities") or {}).items()}},
        intents_needing_agent=tuple(str(i) for i in data.get("always",
                                                             defaults.intents_needing_agent)),
        default_skill=str(data.get("default_skill") or defaults.default_skill),
    )


def asks_for_human(intent: str | None, text: str) -> bool:
    """True if the caller asked for a person, by intent or by words."""
    return intent in HUMAN_REQUEST_INTENTS or bool(_AGENT_WORDS.search(text))


def rule_for(settings: HandoffSettings, intent: str, confidence: float) -> HandoffRule | None:
    """A configured rule (or a built-in 'needs an agent' intent) that applies."""
    for rule in settings.rules:
        if rule.intent == intent and confidence >= rule.min_confidence:
            return rule
    if intent in settings.intents_needing_agent:
        return HandoffRule(intent, settings.skill_by_intent.get(intent))
    return None


def skill_for(settings: HandoffSettings, intent: str | None, state: ConversationState | None
              ) -> str:
    """The skill group for an intent; else the conversation's main topic; else general."""
    if intent and intent in settings.skill_by_intent:
        return settings.skill_by_intent[intent]
    if state is not None:
        for seen in reversed(state.intents_seen):
            if seen.intent in settings.skill_by_intent:
                return settings.skill_by_intent[seen.intent]
    return settings.default_skill


def priority_for(settings: HandoffSettings, state: ConversationState, intent: str | None) -> int:
    """Lower is more urgent: the most urgent intent the caller has shown wins."""
    seen = {i.intent for i in state.intents_seen} | ({intent} if intent else set())
    return min([settings.priority_by_intent.get(i, DEFAULT_PRIORITY) for i in seen],
               default=DEFAULT_PRIORITY)


def decide(
    state: ConversationState,
    *,
    reason: str,
    settings: HandoffSettings,
    now: float,
    intent: str | None = None,
    skill: str | None = None,
    priority: int | None = None,
) -> HandoffDecision:
    """Build the handoff decision from the conversation so far."""
    chosen_skill = skill or skill_for(settings, intent, state)
    return HandoffDecision(
        reason=reason,
        skill=chosen_skill,
        priority=priority if priority is not None else priority_for(settings, state, intent),
        caller_number=state.caller_number,
        transcript=tuple(asdict(t) for t in state.transcript),
        intents=tuple(asdict(i) for i in state.intents_seen),
        slots=state.filled_slots(),
        ivr_path=tuple(state.ivr_path),
        summary=summarise(state, reason=reason, skill=chosen_skill),
        sender_id=state.sender_id,
        created_at=now,
    )


def summarise(state: ConversationState, *, reason: str, skill: str) -> str:
    """The agent's note (see `agent_note`): who, what they want now, what the bot did, what is left."""
    return write_note(state, reason=reason, skill=skill)
