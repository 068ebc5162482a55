"""What can go wrong in the handoff, as exceptions the web layer maps to HTTP statuses."""

from __future__ import annotations


class HandoffError(Exception):
    """Base class of every handoff error."""


class UnknownAgent(HandoffError, LookupError):
    """No agent with this token or id (or the token expired): the desktop answers 401."""


class OfferTaken(HandoffError):
    """Another agent accepted the offer first (or it was withdrawn): the desktop answers 409."""


class IllegalHandoffTransition(HandoffError, ValueError):
    """A call or agent state machine was asked for a move its table does not allow."""

    def __init__(self, machine: str, state: str, event: str) -> None:
        super().__init__(f"{machine}: cannot '{event}' while '{state}'")
        self.machine = machine
        self.state = state
        self.event = event


class UnknownCall(HandoffError, LookupError):
    """No handoff with this call id (never requested, or finished and expired)."""


class NotYourCall(HandoffError):
    """The agent asked to act on a call it is not connected to."""


class UnknownQueue(HandoffError, LookupError):
    """No queue of this name is configured."""


class RedisUnavailable(HandoffError, ConnectionError):
    """Redis cannot be reached; the message names the URL and the cause."""
