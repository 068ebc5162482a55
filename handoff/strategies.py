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


def ranking(strategy: str, candidates: Sequence[AgentSnapshot], queue: str, *, order: Sequence[str] = (),
            last: str | None = None, rng: random.Random | None = None) -> list[str]:
    """All candidates in the order the strategy would ring them, computed once per routing pass
    (calls then take agents from the front, so a pass costs one sort, not one per call)."""
    level = {a.agent_id: a.skills.get(queue, 0) for a in candidates}
    if strategy in ("ringall", "linear"):
        rank = {agent_id: i for i, agent_id in enumerate(order)}
        ordered = sorted(candidates, key=lambda a: (rank.get(a.agent_id, len(rank)), -level[a.agent_id],
                                                    a.name, a.agent_id))
    elif strategy == "longest_idle":
        ordered = sorted(candidates, key=lambda a: (a.idle_since, -level[a.agent_id], a.agent_id))
    elif strategy == "fewest_calls":
        ordered = sorted(candidates, key=lambda a: (a.calls_taken, -level[a.agent_id], a.idle_since, a.agent_id))
    elif strategy == "round_robin":
        by_id = sorted(candidates, key=lambda a: a.agent_id)
        split = sum(1 for a in by_id if a.agent_id <= last) if last is not None else 0
        ordered = by_id[split:] + by_id[:split]
    elif strategy == "random":
        ordered = sorted(candidates, key=lambda a: a.agent_id)
        (rng or random.Random()).shuffle(ordered)
    else:
        raise ValueError(f"unknown strategy {strategy!r}")
    return [a.agent_id for a in ordered]


def pick(strategy: str, candidates: Sequence[AgentSnapshot], queue: str, *, order: Sequence[str] = (),
         last: str | None = None, rng: random.Random | None = None) -> list[str]:
    """The agents to ring for one call: everyone for ringall (best skilled first), else the first
    in the strategy's order:

    - linear: the configured `agent_order`, then by level and name;
    - longest_idle: the agent waiting longest since their last call;
    - fewest_calls: the agent who has taken the fewest calls (then the longest idle);
    - round_robin: the next agent (by id) after the one rung last time, wrapping around;
    - random: any free agent; the queue's seeded generator makes it reproducible.
    A higher skill level breaks ties."""
    ranked = ranking(strategy, candidates, queue, order=order, last=last, rng=rng)
    return ranked if strategy == "ringall" else ranked[:1]
