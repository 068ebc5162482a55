"""The router's decisions without Redis: strategies, priorities, ring timeouts, overflow, hours, positions."""

from __future__ import annotations

import random
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from handoff.acd import (
    CloseCall,
    NobodySignedIn,
    OverflowCall,
    QueueMemory,
    Ring,
    RingTimeout,
    SendPosition,
    WaitingCall,
    decide,
    ordered,
)
from handoff.config import BusinessHours, HandoffConfig, QueueConfig
from handoff.errors import IllegalHandoffTransition
from handoff.model import AgentStatus, HandoffState
from handoff.states import AGENT_TRANSITIONS, CALL_TRANSITIONS, agent_next, call_next, status_event
from handoff.strategies import AgentSnapshot, pick

NOW = 1_800_000_000.0  # Friday 2027-01-15 08:00 UTC


def agent(agent_id: str, *, idle: float = 0.0, calls: int = 0, level: int = 3, status: AgentStatus =
          AgentStatus.AVAILABLE, online: bool = True, skill: str = "orders") -> AgentSnapshot:
    return AgentSnapshot(agent_id, agent_id.title(), {skill: level}, status, NOW - idle, calls, online)


def call(call_id: str, *, waited: float = 0.0, priority: int = 3, **kw: object) -> WaitingCall:
    return WaitingCall(call_id, priority, NOW - waited, **kw)  # type: ignore[arg-type]


def rings(actions: list) -> dict[str, tuple[str, ...]]:
    return {a.call_id: a.agent_ids for a in actions if isinstance(a, Ring)}


FLOOR = [agent("ann", idle=30, calls=5, level=2), agent("bob", idle=90, calls=7, level=4),
         agent("cat", idle=60, calls=1, level=3)]


# Strategies, one call at a time.

def test_ringall_rings_every_free_agent_best_skilled_first() -> None:
    assert pick("ringall", FLOOR, "orders") == ["bob", "cat", "ann"]


def test_longest_idle_picks_the_agent_waiting_longest() -> None:
    assert pick("longest_idle", FLOOR, "orders") == ["bob"]


def test_fewest_calls_picks_the_agent_with_fewest_calls_taken() -> None:
    assert pick("fewest_calls", FLOOR, "orders") == ["cat"]


def test_linear_follows_the_configured_order_then_level() -> None:
    assert pick("linear", FLOOR, "orders", order=("cat", "ann")) == ["cat"]
    assert pick("linear", FLOOR, "orders") == ["bob"]  # no order configured: highest level first


def test_round_robin_remembers_who_was_rung_last_and_wraps_around() -> None:
    assert pick("round_robin", FLOOR, "orders", last=None) == ["ann"]
    assert pick("round_robin", FLOOR, "orders", last="ann") == ["bob"]
    assert pick("round_robin", FLOOR, "orders", last="bob") == ["cat"]
    assert pick("round_robin", FLOOR, "orders", last="cat") == ["ann"]


def test_random_is_reproducible_with_a_seed() -> None:
    first = [pick("random", FLOOR, "orders", rng=r)[0] for r in [random.Random(7)] for _ in range(10)]
    again = [pick("random", FLOOR, "orders", rng=r)[0] for r in [random.Random(7)] for _ in range(10)]
    assert first == again
    assert len(set(first)) > 1  # it really varies


def test_no_candidates_no_ring_and_unknown_strategy_is_an_error() -> None:
    assert pick("longest_idle", [], "orders") == []
    with pytest.raises(ValueError, match="unknown strategy"):
        pick("loudest", FLOOR, "orders")


def test_round_robin_memory_carries_over_between_decisions() -> None:
    config, memory = QueueConfig(strategy="round_robin"), QueueMemory()
    seen = []
    for n in range(4):
        actions = decide("orders", config, [call(f"c{n}")], FLOOR, NOW, memory)
        seen.append(rings(actions)[f"c{n}"][0])
    assert seen == ["ann", "bob", "cat", "ann"]


# The queue as a whole.

def test_complaints_first_then_first_come_first_served() -> None:
    calls = [call("early", waited=50), call("complaint", waited=5, priority=1), call("later", waited=20)]
    assert [c.call_id for c in ordered(calls)] == ["complaint", "early", "later"]
    actions = decide("orders", QueueConfig(), calls, [agent("ann")], NOW, QueueMemory())
    assert rings(actions) == {"complaint": ("ann",)}


def test_a_call_put_back_goes_before_everyone_keeping_its_wait() -> None:
    calls = [call("complaint", waited=5, priority=1), call("back", waited=1, front=True)]
    assert [c.call_id for c in ordered(calls)] == ["back", "complaint"]


def test_offline_busy_unskilled_and_silent_agents_are_not_rung() -> None:
    floor = [agent("away", status=AgentStatus.AWAY), agent("busy", status=AgentStatus.ON_CALL),
             agent("tech", skill="tech"), agent("gone", online=False)]
    actions = decide("orders", QueueConfig(), [call("c1")], floor, NOW, QueueMemory())
    assert rings(actions) == {}
    assert actions == [SendPosition("c1", 1, 90.0)]  # two signed in (away, busy): 1 x 180 s / 2


def test_each_free_agent_rings_for_one_call_at_a_time() -> None:
    calls = [call("c1", waited=30), call("c2", waited=20), call("c3", waited=10)]
    actions = decide("orders", QueueConfig(), calls, FLOOR, NOW, QueueMemory())
    assert rings(actions) == {"c1": ("bob",), "c2": ("cat",), "c3": ("ann",)}


def test_ring_timeout_frees_the_agent_and_the_next_one_rings() -> None:
    config = QueueConfig(strategy="linear", agent_order=("ann", "bob"), ring_timeout_s=15)
    offered = call("c1", waited=20, state=HandoffState.OFFERED, offer_id="c1:1", offered_to=("ann",),
                   offer_expires_at=NOW - 0.1, offer_seq=1)
    actions = decide("orders", config, [offered], [agent("ann", status=AgentStatus.RINGING), agent("bob")],
                     NOW, QueueMemory())
    assert actions[0] == RingTimeout("c1", "c1:1", ("ann",))
    assert actions[1] == Ring("c1", "c1:2", ("bob",), NOW + 15)


def test_an_offer_still_ringing_is_left_alone() -> None:
    offered = call("c1", state=HandoffState.OFFERED, offer_id="c1:1", offered_to=("ann",),
                   offer_expires_at=NOW + 3)
    assert decide("orders", QueueConfig(), [offered], [agent("bob")], NOW, QueueMemory()) == []


def test_after_everyone_let_it_ring_everyone_is_tried_again() -> None:
    waiting = call("c1", tried=("ann", "bob"))
    actions = decide("orders", QueueConfig(), [waiting], [agent("ann", idle=5), agent("bob", idle=9)], NOW,
                     QueueMemory())
    assert rings(actions) == {"c1": ("bob",)}


def test_max_wait_overflows_to_the_configured_action() -> None:
    config = QueueConfig(max_wait_s=120, overflow="transfer", overflow_target="+18005550100")
    calls = [call("patient", waited=119), call("too-long", waited=120),
             call("ringing", waited=130, state=HandoffState.OFFERED, offer_id="ringing:2", offered_to=("ann",),
                  offer_expires_at=NOW + 5)]
    actions = decide("orders", config, calls, [agent("ann", status=AgentStatus.RINGING)], NOW, QueueMemory())
    assert OverflowCall("too-long", "transfer", "+18005550100", None) in actions
    assert OverflowCall("ringing", "transfer", "+18005550100", "ringing:2", ("ann",)) in actions
    assert not [a for a in actions if a.call_id == "patient" and not isinstance(a, SendPosition)]


def test_max_wait_with_choices_offers_them_with_the_default_action() -> None:
    config = QueueConfig(max_wait_s=60, overflow="callback", overflow_target="+18005550100",
                         overflow_choices=("callback", "voicemail", "transfer"), overflow_choice_timeout_s=5)
    actions = decide("orders", config, [call("c1", waited=60)], [agent("ann", status=AgentStatus.AWAY)], NOW,
                     QueueMemory())
    assert actions == [OverflowCall("c1", "callback", "+18005550100", None, (), ("callback", "voicemail", "transfer"),
                                    5.0, "+18005550100")]


def test_expected_waits_use_the_measured_handle_time_when_there_is_one() -> None:
    config = QueueConfig(average_handle_s=180)
    waiting = [call("c1", waited=10), call("c2", waited=5)]
    busy = [agent("ann", status=AgentStatus.ON_CALL)]
    assert [a.expected_wait_s for a in decide("orders", config, waiting, busy, NOW, QueueMemory())
            if isinstance(a, SendPosition)] == [180.0, 360.0]
    assert [a.expected_wait_s for a in decide("orders", config, waiting, busy, NOW, QueueMemory(), handle_s=75.0)
            if isinstance(a, SendPosition)] == [75.0, 150.0]


# Nobody signed in for the skill: waiting would be for nobody.

def test_nobody_signed_in_sends_the_call_back_to_the_bot_at_once() -> None:
    gone = [agent("ann", online=False), agent("bob", status=AgentStatus.OFFLINE), agent("cy", skill="tech")]
    actions = decide("orders", QueueConfig(), [call("c1", waited=1)], gone, NOW, QueueMemory())
    assert actions == [NobodySignedIn("c1", "no orders agent is logged in")]


def test_nobody_signed_in_offers_the_overflow_choices_at_once() -> None:
    config = QueueConfig(overflow="callback", overflow_choices=("callback", "voicemail"), overflow_choice_timeout_s=6)
    actions = decide("orders", config, [call("c1", waited=1)], [], NOW, QueueMemory())
    assert actions == [NobodySignedIn("c1", "no orders agent is logged in", OverflowCall(
        "c1", "callback", None, None, (), ("callback", "voicemail"), 6.0, None))]


def test_an_agent_signed_in_but_away_keeps_the_call_waiting() -> None:
    actions = decide("orders", QueueConfig(), [call("c1", waited=1)], [agent("ann", status=AgentStatus.AWAY)], NOW,
                     QueueMemory())
    assert actions == [SendPosition("c1", 1, 180.0)]


def test_overflow_needs_a_target_for_a_transfer() -> None:
    with pytest.raises(ValidationError, match="overflow_target"):
        QueueConfig(overflow="transfer")


def test_closed_queue_closes_waiting_calls_with_the_opening_time() -> None:
    actions = decide("orders", QueueConfig(), [call("c1")], FLOOR, NOW, QueueMemory(), is_open=False,
                     opens_at=NOW + 3600)
    assert actions == [CloseCall("c1", NOW + 3600)]


def test_position_updates_every_interval_only() -> None:
    config = QueueConfig(position_interval_s=20, average_handle_s=120)
    calls = [call("c1", waited=30, position_sent_at=NOW - 25), call("c2", waited=20, position_sent_at=NOW - 5),
             call("c3", waited=1)]
    busy = [agent("ann", status=AgentStatus.ON_CALL), agent("bob", status=AgentStatus.WRAP_UP)]
    actions = decide("orders", config, calls, busy, NOW, QueueMemory())
    assert actions == [SendPosition("c1", 1, 60.0), SendPosition("c3", 3, 180.0)]


# Business hours.

def test_business_hours_are_local_to_the_queue_time_zone() -> None:
    hours = BusinessHours(timezone="America/New_York", days={d: "09:00-17:00" for d in
                                                            ("mon", "tue", "wed", "thu", "fri")})
    ny = ZoneInfo("America/New_York")
    at = lambda *args: datetime(*args, tzinfo=ny).timestamp()  # noqa: E731
    assert hours.is_open(at(2027, 1, 15, 9, 0))
    assert not hours.is_open(at(2027, 1, 15, 8, 59))
    assert not hours.is_open(at(2027, 1, 15, 17, 0))
    assert not hours.is_open(at(2027, 1, 16, 12, 0))  # Saturday
    assert hours.next_opening(at(2027, 1, 15, 18, 0)) == at(2027, 1, 18, 9, 0)  # Monday morning
    assert not hours.is_open(NOW)  # 08:00 UTC is 03:00 in New York


def test_bad_business_hours_are_clear_errors() -> None:
    with pytest.raises(ValidationError, match="unknown time zone"):
        BusinessHours(timezone="Mars/Olympus")
    with pytest.raises(ValidationError, match="unknown day"):
        BusinessHours(days={"monday": "09:00-17:00"})
    with pytest.raises(ValidationError, match="09:00-17:00"):
        BusinessHours(days={"mon": "nine to five"})
    with pytest.raises(ValidationError, match="end before"):
        BusinessHours(days={"mon": "17:00-09:00"})


def test_default_config_has_the_five_skill_queues_and_config_adds_to_them() -> None:
    assert sorted(HandoffConfig().queues) == ["billing", "general", "orders", "returns", "tech"]
    config = HandoffConfig.model_validate({"queues": {"tech": {"strategy": "ringall"}, "vip": {}, "returns": None}})
    assert sorted(config.queues) == ["billing", "general", "orders", "tech", "vip"]
    assert config.queue("tech").strategy == "ringall"
    assert config.queue_for("warranty") == "general"
    with pytest.raises(ValidationError, match="default_queue"):
        HandoffConfig.model_validate({"queues": {"general": None}})
    with pytest.raises(ValidationError, match="strategy"):
        HandoffConfig.model_validate({"queues": {"tech": {"strategy": "loudest"}}})


# State tables.

def test_agent_table_allows_the_working_day() -> None:
    status = AgentStatus.OFFLINE
    for event in ("login", "ring", "accept", "call_ended", "ready", "away", "ready", "logout"):
        status = agent_next(status, event)
    assert status is AgentStatus.OFFLINE


@pytest.mark.parametrize(("status", "event"), [(AgentStatus.OFFLINE, "ring"), (AgentStatus.ON_CALL, "away"),
                                               (AgentStatus.AWAY, "ring"), (AgentStatus.ON_CALL, "ready"),
                                               (AgentStatus.WRAP_UP, "accept")])
def test_agent_table_refuses_illegal_moves(status: AgentStatus, event: str) -> None:
    with pytest.raises(IllegalHandoffTransition, match=f"cannot '{event}' while '{status.value}'"):
        agent_next(status, event)


def test_a_disconnect_always_takes_the_agent_offline() -> None:
    assert {AGENT_TRANSITIONS[(s, "disconnect")] for s in AgentStatus} == {AgentStatus.OFFLINE}


def test_agents_may_only_ask_for_available_away_or_offline() -> None:
    assert status_event(AgentStatus.OFFLINE, AgentStatus.AVAILABLE) == "login"
    assert status_event(AgentStatus.WRAP_UP, AgentStatus.AVAILABLE) == "ready"
    with pytest.raises(IllegalHandoffTransition):
        status_event(AgentStatus.AVAILABLE, AgentStatus.ON_CALL)
    with pytest.raises(IllegalHandoffTransition):
        status_event(AgentStatus.ON_CALL, AgentStatus.AWAY)


def test_call_table_covers_a_call_from_queue_to_hang_up() -> None:
    state = HandoffState.WAITING
    for event in ("offer", "ring_timeout", "offer", "accept", "requeue", "offer", "accept", "hang_up"):
        state = call_next(state, event)
    assert state is HandoffState.ENDED
    finals = {HandoffState.ENDED, HandoffState.ABANDONED, HandoffState.OVERFLOWED, HandoffState.CLOSED,
              HandoffState.RETURNED_TO_BOT}
    assert not [key for key in CALL_TRANSITIONS if key[0] in finals]  # nothing leaves a final state
    with pytest.raises(IllegalHandoffTransition, match="call: cannot 'accept' while 'waiting'"):
        call_next(HandoffState.WAITING, "accept")


def _doc_table(header_start: str) -> dict[tuple[str, str], str]:
    """A state table of docs/architecture.md as (state, event) -> next state."""
    lines = (Path(__file__).resolve().parent.parent / "docs/architecture.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    events = [c.strip() for c in lines[start].strip("|").split("|")][1:]
    table: dict[tuple[str, str], str] = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        state, *cells = (c.strip() for c in line.strip("|").split("|"))
        for names, cell in zip(events, cells, strict=True):
            for event in names.split(", "):
                if cell != "-":
                    table[(state, event)] = cell
    return table


def test_the_documented_state_tables_are_the_code_tables() -> None:
    assert _doc_table("| state \\ event | offer") == {(s.value, e): n.value for (s, e), n in CALL_TRANSITIONS.items()}
    documented = _doc_table("| state \\ event | login")
    in_code = {(s.value, e): n.value for (s, e), n in AGENT_TRANSITIONS.items() if e != "disconnect"}
    assert documented == in_code
