"""The two state machines of the handoff as tables: (state, event) -> next state; anything else raises."""

from __future__ import annotations

from handoff.errors import IllegalHandoffTransition
from handoff.model import AgentStatus, HandoffState

A = AgentStatus
C = HandoffState

AGENT_TRANSITIONS: dict[tuple[AgentStatus, str], AgentStatus] = {
    (A.OFFLINE, "login"): A.AVAILABLE,
    (A.OFFLINE, "away"): A.AWAY,
    (A.AVAILABLE, "ring"): A.RINGING,
    (A.AVAILABLE, "away"): A.AWAY,
    (A.AVAILABLE, "ready"): A.AVAILABLE,
    (A.AVAILABLE, "logout"): A.OFFLINE,
    (A.RINGING, "accept"): A.ON_CALL,
    (A.RINGING, "decline"): A.AVAILABLE,
    (A.RINGING, "ring_timeout"): A.AVAILABLE,
    (A.RINGING, "withdraw"): A.AVAILABLE,
    (A.RINGING, "logout"): A.OFFLINE,
    (A.ON_CALL, "call_ended"): A.WRAP_UP,
    (A.WRAP_UP, "ready"): A.AVAILABLE,
    (A.WRAP_UP, "away"): A.AWAY,
    (A.WRAP_UP, "logout"): A.OFFLINE,
    (A.AWAY, "ready"): A.AVAILABLE,
    (A.AWAY, "away"): A.AWAY,
    (A.AWAY, "logout"): A.OFFLINE,
    **{(state, "disconnect"): A.OFFLINE for state in AgentStatus},
}

# What an agent may ask for with set_status: the target status -> the event.
STATUS_REQUESTS: dict[AgentStatus, str] = {A.AVAILABLE: "ready", A.AWAY: "away", A.OFFLINE: "logout"}

CALL_TRANSITIONS: dict[tuple[HandoffState, str], HandoffState] = {
    (C.WAITING, "offer"): C.OFFERED,
    (C.WAITING, "caller_hung_up"): C.ABANDONED,
    (C.WAITING, "overflow"): C.OVERFLOWED,
    (C.WAITING, "close"): C.CLOSED,
    (C.WAITING, "no_agents"): C.RETURNED_TO_BOT,
    (C.OFFERED, "accept"): C.CONNECTED,
    (C.OFFERED, "decline"): C.WAITING,
    (C.OFFERED, "ring_timeout"): C.WAITING,
    (C.OFFERED, "caller_hung_up"): C.ABANDONED,
    (C.OFFERED, "overflow"): C.OVERFLOWED,
    (C.CONNECTED, "hang_up"): C.ENDED,
    (C.CONNECTED, "caller_hung_up"): C.ENDED,
    (C.CONNECTED, "hand_back"): C.RETURNED_TO_BOT,
    (C.CONNECTED, "requeue"): C.WAITING,  # transfer to a queue, or the agent's browser went away
    (C.CONNECTED, "no_agents"): C.RETURNED_TO_BOT,
    (C.CONNECTED, "transfer_to_agent"): C.OFFERED,
}


def agent_next(status: AgentStatus, event: str) -> AgentStatus:
    """The agent's next status; IllegalHandoffTransition if the table has no such move."""
    try:
        return AGENT_TRANSITIONS[(status, event)]
    except KeyError:
        raise IllegalHandoffTransition("agent", status.value, event) from None


def call_next(state: HandoffState, event: str) -> HandoffState:
    """The queue entry's next state; IllegalHandoffTransition if the table has no such move."""
    try:
        return CALL_TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalHandoffTransition("call", state.value, event) from None


def status_event(current: AgentStatus, wanted: AgentStatus) -> str:
    """The event an agent's request for `wanted` means; IllegalHandoffTransition for on_call, ringing ..."""
    event = STATUS_REQUESTS.get(wanted)
    if event is None:
        raise IllegalHandoffTransition("agent", current.value, f"set {wanted.value}")
    if current is A.OFFLINE and wanted is A.AVAILABLE:
        event = "login"
    agent_next(current, event)
    return event
