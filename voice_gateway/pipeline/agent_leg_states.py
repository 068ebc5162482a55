"""The agent leg's states as a transition table: where the human side of a call is (`agent_leg.AgentLeg`
carries it out); an unlisted (state, event) pair raises `IllegalLegTransition`."""

from __future__ import annotations

from enum import StrEnum


class Leg(StrEnum):
    BOT = "bot"  # no human involved: the bot talks and listens
    QUEUED = "queued"  # waiting for an agent: hold music, position announcements; the bot does not listen
    AGENT = "agent"  # an agent talks with the caller; the bot is silent and deaf
    HELD = "held"  # the agent put the caller on hold: hold music, nothing bridged
    OFFERING = "offering"  # nobody answered: the caller hears the overflow choices and may press a key
    OVERFLOW = "overflow"  # nobody answered: a callback, a voicemail or a transfer is under way
    ENDED = "ended"


LEG_TRANSITIONS: dict[tuple[Leg, str], Leg] = {
    (Leg.BOT, "request"): Leg.QUEUED,
    (Leg.QUEUED, "position"): Leg.QUEUED,
    (Leg.QUEUED, "agent_joined"): Leg.AGENT,
    (Leg.QUEUED, "overflow"): Leg.OVERFLOW,
    (Leg.QUEUED, "overflow_offer"): Leg.OFFERING,
    (Leg.OFFERING, "choose"): Leg.OVERFLOW,
    (Leg.QUEUED, "closed"): Leg.BOT,
    (Leg.QUEUED, "back_to_bot"): Leg.BOT,
    (Leg.AGENT, "hold"): Leg.HELD,
    (Leg.HELD, "unhold"): Leg.AGENT,
    (Leg.AGENT, "requeued"): Leg.QUEUED,
    (Leg.HELD, "requeued"): Leg.QUEUED,
    (Leg.AGENT, "back_to_bot"): Leg.BOT,
    (Leg.HELD, "back_to_bot"): Leg.BOT,
    (Leg.AGENT, "agent_hung_up"): Leg.ENDED,
    (Leg.HELD, "agent_hung_up"): Leg.ENDED,
    **{(leg, "end"): Leg.ENDED for leg in Leg},
}


class IllegalLegTransition(RuntimeError):
    """The handoff side sent something the leg's state does not accept."""
