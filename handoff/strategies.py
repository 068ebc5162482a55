"""Which free agent(s) ring for a call: pure functions over a snapshot of the candidates.

Candidates are already filtered (online, available, skilled for the queue, not yet tried for this
call). A higher skill level breaks ties in every strategy."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from handoff.model import AgentStatus


@dataclass(frozen=True)
class AgentSnapshot:
    """An agent as the router sees it at one moment."""

    agent_id: str
    name: str
    skills: dict[str, int]
    status: AgentStatus
    idle_since: float  # when the agent last became available
    calls_taken: int
    online: bool  # heartbeat not expired


def ringall(candidates: Sequence[AgentSnapshot], queue: str) -> list[str]:
    """Every free agent at once; the first to accept gets the call."""
    return [a.agent_id for a in sorted(candidates, key=lambda a: (-a.skills.get(queue, 0), a.agent_id))]


def linear(candidates: Sequence[AgentSnapshot], queue: str, order: Sequence[str]) -> list[str]:
    """The first free agent in a fixed order: the configured ids, then by level and name."""
    rank = {agent_id: i for i, agent_id in enumerate(order)}
    best = min(candidates, key=lambda a: (rank.get(a.agent_id, len(rank)), -a.skills.get(queue, 0),
                                          a.name, a.agent_id))
    return [best.agent_id]


def longest_idle(candidates: Sequence[AgentSnapshot], queue: str) -> list[str]:
    """The agent who has waited longest since their last call."""
    best = min(candidates, key=lambda a: (a.idle_since, -a.skills.get(queue, 0), a.agent_id))
    return [best.agent_id]


def fewest_calls(candidates: Sequence[AgentSnapshot], queue: str) -> list[str]:
    """The agent who has taken the fewest calls (then the longest idle)."""
    best = min(candidates, key=lambda a: (a.calls_taken, -a.skills.get(queue, 0), a.idle_since,
                                          a.agent_id))
    return [best.agent_id]


def round_robin(candidates: Sequence[AgentSnapshot], last: str | None) -> list[str]:
    """The next agent after the one rung last time, in id order (wrapping around)."""
    ordered = sorted(candidates, key=lambda a: a.agent_id)
    after = [a for a in ordered if last is not None and a.agent_id > last]
    return [(after or ordered)[0].agent_id]


def random_pick(candidates: Sequence[AgentSnapshot], rng: random.Random) -> list[str]:
    """Any free agent; the router's seeded generator makes it reproducible."""
    ordered = sorted(candidates, key=lambda a: a.agent_id)
    return [rng.choice(ordered).agent_id]


def pick(strategy: str, candidates: Sequence[AgentSnapshot], queue: str, *, order: Sequence[str] = (),
         last: str | None = None, rng: random.Random | None = None) -> list[str]:
    """The agents to ring by the queue's strategy; empty when there are no candidates."""
    if not candidates:
        return []
    if strategy == "ringall":
        return ringall(candidates, queue)
    if strategy == "linear":
        return linear(candidates, queue, order)
    if strategy == "longest_idle":
        return longest_idle(candidates, queue)
    if strategy == "fewest_calls":
        return fewest_calls(candidates, queue)
    if strategy == "round_robin":
        return round_robin(candidates, last)
    if strategy == "random":
        return random_pick(candidates, rng or random.Random())
    raise ValueError(f"unknown strategy {strategy!r}")
