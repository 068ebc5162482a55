"""What a call needs from the humans' side, as a protocol: `voice_gateway.pipeline` must not import `handoff`.

callpilot wires the real handoff service and its Redis audio bridge to `HandoffPort` (callpilot/handoff_port.py)
and translates the service's events into the updates below.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from bot.dialogue import HandoffDecision

# What the handoff side tells a call (callpilot translates the handoff service's events into these).


@dataclass(frozen=True)
class InQueue:
    position: int  # 1 = next
    expected_wait_s: float | None  # None: not known, so not announced


@dataclass(frozen=True)
class AgentJoined:
    agent_id: str
    name: str


@dataclass(frozen=True)
class AgentGone:
    reason: str  # hangup | hand_back | disconnected | transfer | transfer_out
    requeued: bool  # the call waits for an agent again (else the bot has it, or the call ends on hangup)
    target: str | None = None  # transfer_out: where the caller is sent (a number or SIP address)


@dataclass(frozen=True)
class NoAgent:
    """Overflow: nobody answered in time; offer a callback, take a voicemail or transfer to `target`.
    With `choices` the caller picks by key (1 = the first) and `action` is the default after `choice_timeout_s`."""

    action: str  # callback | voicemail | transfer
    target: str | None
    choices: tuple[str, ...] = ()
    choice_timeout_s: float = 0.0
    backup: str | None = None  # the transfer number when transfer is a choice


@dataclass(frozen=True)
class QueueClosed:
    opens_at: float | None


@dataclass(frozen=True)
class BackToBot:
    reason: str


@dataclass(frozen=True)
class Hold:
    """The agent put the caller on hold (or took them off it); travels with the agent's audio."""

    on: bool


LegUpdate = InQueue | AgentJoined | AgentGone | NoAgent | QueueClosed | BackToBot


class HandoffPort(Protocol):
    """What a call needs from the humans' side; agent audio is PCM16 mono at `hold.BRIDGE_RATE`, 20 ms frames."""

    async def request(self, call_id: str, decision: HandoffDecision, *, language: str) -> None: ...

    def updates(self, call_id: str) -> AsyncIterator[LegUpdate]: ...

    async def caller_hung_up(self, call_id: str) -> None: ...

    async def send_to_agent(self, call_id: str, pcm16: bytes) -> None: ...

    def from_agent(self, call_id: str) -> AsyncIterator[bytes | Hold]: ...

    async def key_to_agent(self, call_id: str, digit: str) -> None:
        """A key the caller pressed while talking to the agent: shown on the agent's desktop."""
        ...

    async def request_callback(self, call_id: str) -> str:
        """Put the caller on the callback list (at the number they call from); returns that number."""
        ...

    async def transcript_line(self, call_id: str, speaker: str, text: str) -> None:
        """A line the caller or the agent said while talking to each other: to the agent's desktop."""
        ...

    async def caller_here(self, call_id: str) -> None:
        """The caller's side of a handed-over call is still there (said every few seconds; a side that stops,
        its process gone, gets the call ended as lost by any other process)."""
        ...


class Transcriber(Protocol):
    """Transcribes both sides of the agent leg (`agent_leg_transcript.LegTranscript`)."""

    def feed(self, speaker: str, pcm16: bytes) -> None: ...

    async def close(self) -> None: ...


LineSink = Callable[[str, str], Awaitable[None]]


class LegHost(Protocol):
    """What the leg asks of its call (CallPipeline implements it)."""

    def say(self, text: str, *, then_hang_up: str | None = None, transfer_to: str | None = None) -> None: ...

    async def silence_bot(self) -> None: ...

    async def resume_bot(self, text: str) -> None: ...

    async def hang_up(self, reason: str) -> None: ...

    async def show(self, status: str, detail: str = "") -> None: ...

    def log_leg(self, stage: str, **data: object) -> None: ...

    def log_said(self, speaker: str, text: str) -> None:
        """What the caller or the agent said on the agent leg, into the call log (the records' transcript)."""
        ...

    def transcriber(self, emit: LineSink) -> Transcriber | None:
        """A transcriber for the agent leg whose lines go to `emit` (None: not transcribed)."""
        ...

    def voicemail_audio(self, pcm16: bytes) -> None:
        """The caller's message, as it is spoken (written to disk as it comes)."""

    def save_voicemail(self) -> None:
        """The message is over: keep it (and log it)."""
