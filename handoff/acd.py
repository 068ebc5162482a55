"""Automatic call distribution as a pure function: queue state + agents + clock -> actions.

No I/O and no clock of its own: `decide` is given everything and returns what to do, so every
strategy, timeout, overflow and business-hours rule is tested without Redis (`handoff.router`
carries the actions out)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from handoff.config import QueueConfig
from handoff.model import AgentStatus, HandoffState
from handoff.strategies import AgentSnapshot, ranking


@dataclass(frozen=True)
class WaitingCall:
    """A queue entry as the router sees it."""

    call_id: str
    priority: int  # lower first (complaints are 1)
    enqueued_at: float
    state: HandoffState = HandoffState.WAITING
    front: bool = False  # put back by a transfer or a lost agent: ahead of everyone, keeping its wait
    offer_id: str | None = None
    offered_to: tuple[str, ...] = ()
    offer_expires_at: float = 0.0
    tried: tuple[str, ...] = ()  # agents who let it ring out or declined
    position_sent_at: float | None = None
    offer_seq: int = 0

    def sort_key(self) -> tuple[bool, int, float, str]:
        return (not self.front, self.priority, self.enqueued_at, self.call_id)


@dataclass(frozen=True)
class Ring:
    call_id: str
    offer_id: str
    agent_ids: tuple[str, ...]
    expires_at: float


@dataclass(frozen=True)
class RingTimeout:
    """Nobody accepted in time: the agents become available, the call waits again."""

    call_id: str
    offer_id: str
    agent_ids: tuple[str, ...]


@dataclass(frozen=True)
class OverflowCall:
    call_id: str
    action: str
    target: str | None
    withdraw_offer: str | None  # an offer still ringing, to withdraw
    agent_ids: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()  # offered to the caller by keys; `action` is the default
    choice_timeout_s: float = 0.0
    backup: str | None = None  # the transfer number, when transfer is one of the choices


@dataclass(frozen=True)
class CloseCall:
    call_id: str
    opens_at: float | None


@dataclass(frozen=True)
class SendPosition:
    call_id: str
    position: int
    expected_wait_s: float | None  # None: not known (no agent serving the queue right now)


@dataclass(frozen=True)
class NobodySignedIn:
    """No agent with the queue's skill is signed in: waiting would be for nobody. With `overflow_choices`
    the caller is offered them at once (`overflow`); otherwise the bot takes the call back."""

    call_id: str
    reason: str
    overflow: OverflowCall | None = None


Action = Ring | RingTimeout | OverflowCall | CloseCall | SendPosition | NobodySignedIn


@dataclass
class QueueMemory:
    """What a router remembers about a queue between ticks (round-robin's last agent, its RNG)."""

    last_agent: str | None = None
    rng: random.Random = field(default_factory=random.Random)


def ordered(calls: Sequence[WaitingCall]) -> list[WaitingCall]:
    """Queue order: put-back calls first, then priority, then first come first served."""
    return sorted(calls, key=WaitingCall.sort_key)


def expected_wait(position: int, agents_logged_in: int, config: QueueConfig,
                  handle_s: float | None = None) -> float | None:
    """Rough expected wait: calls ahead x average handling time / agents signed in to the queue (busy or on a
    break). The handling time is the measured one (`handle_s`, a moving average of talk + wrap-up) once there
    is one, else the configured `average_handle_s`. None (not known, so not announced) while nobody is signed in."""
    if agents_logged_in <= 0:
        return None
    handle = config.average_handle_s if handle_s is None else handle_s
    return round(position * handle / agents_logged_in, 1)


def signed_in(agents: Sequence[AgentSnapshot], queue: str) -> list[AgentSnapshot]:
    """The agents who could take a call of `queue`: signed in (heartbeat alive) with the skill, even if away."""
    return [a for a in agents if a.online and a.skills.get(queue, 0) > 0 and a.status is not AgentStatus.OFFLINE]


def nobody_signed_in(call_id: str, queue: str, config: QueueConfig) -> NobodySignedIn:
    """What happens to a call of a queue nobody is signed in to: the overflow choices at once, or the bot."""
    reason = f"no {queue} agent is logged in"
    if not config.overflow_choices:
        return NobodySignedIn(call_id, reason)
    return NobodySignedIn(call_id, reason, OverflowCall(
        call_id, config.overflow, config.overflow_target, None, (), tuple(config.overflow_choices),
        config.overflow_choice_timeout_s, config.overflow_target))


def decide(
    queue: str,
    config: QueueConfig,
    calls: Sequence[WaitingCall],
    agents: Sequence[AgentSnapshot],
    now: float,
    memory: QueueMemory,
    *,
    is_open: bool = True,
    opens_at: float | None = None,
    offer_id_for: str = "",
    handle_s: float | None = None,
) -> list[Action]:
    """Everything the router should do for one queue now. Mutates only `memory`."""
    actions: list[Action] = []
    serving = [a for a in agents if a.online and a.skills.get(queue, 0) > 0
               and a.status not in (AgentStatus.OFFLINE, AgentStatus.AWAY)]
    free = {a.agent_id: a for a in serving if a.status is AgentStatus.AVAILABLE}
    staffed = len(signed_in(agents, queue))
    still_waiting: list[WaitingCall] = []
    for call in ordered(calls):
        if call.state is HandoffState.OFFERED and now - call.enqueued_at >= config.max_wait_s:
            actions.append(_overflow(call, config, call.offer_id, call.offered_to))
            continue
        if call.state is HandoffState.OFFERED and now >= call.offer_expires_at and call.offer_id:
            actions.append(RingTimeout(call.call_id, call.offer_id, call.offered_to))
            call = replace(call, state=HandoffState.WAITING, offer_id=None, offered_to=(),
                           tried=tuple(dict.fromkeys(call.tried + call.offered_to)))
        if call.state is not HandoffState.WAITING:
            still_waiting.append(call)
            continue
        if not is_open:
            actions.append(CloseCall(call.call_id, opens_at))
        elif now - call.enqueued_at >= config.max_wait_s:
            actions.append(_overflow(call, config, None, ()))
        elif not staffed:
            actions.append(nobody_signed_in(call.call_id, queue, config))
        else:
            still_waiting.append(call)

    ranked = ranking(config.strategy, list(free.values()), queue, order=config.agent_order,
                     last=memory.last_agent, rng=memory.rng) if free else []
    taken: set[str] = set()
    for position, call in enumerate(still_waiting, start=1):
        if call.state is HandoffState.WAITING and len(taken) < len(ranked):
            chosen = _choose(config.strategy, ranked, taken, call.tried)
            taken.update(chosen)
            memory.last_agent = chosen[-1]
            actions.append(Ring(call.call_id, f"{offer_id_for}{call.call_id}:{call.offer_seq + 1}",
                                tuple(chosen), now + config.ring_timeout_s))
            continue
        if call.state is HandoffState.WAITING and (
                call.position_sent_at is None or now - call.position_sent_at >= config.position_interval_s):
            expected = expected_wait(position, staffed, config, handle_s)
            actions.append(SendPosition(call.call_id, position, expected))
    return actions


def _choose(strategy: str, ranked: Sequence[str], taken: set[str], tried: Sequence[str]) -> list[str]:
    """The first free agent in rank order not yet tried for this call (once everyone was tried,
    everyone is eligible again); ringall takes all free agents."""
    if strategy == "ringall":
        return [a for a in ranked if a not in taken]
    fresh = next((a for a in ranked if a not in taken and a not in tried), None)
    return [fresh if fresh is not None else next(a for a in ranked if a not in taken)]


def _overflow(call: WaitingCall, config: QueueConfig, withdraw: str | None, agent_ids: tuple[str, ...]
              ) -> OverflowCall:
    if not config.overflow_choices:
        return OverflowCall(call.call_id, config.overflow, config.overflow_target, withdraw, agent_ids)
    return OverflowCall(call.call_id, config.overflow, config.overflow_target, withdraw, agent_ids,
                        tuple(config.overflow_choices), config.overflow_choice_timeout_s, config.overflow_target)
