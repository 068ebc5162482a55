"""Call-log events become one `calls` row per call, through the buffered writer, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from callpilot.records.db import Database
from callpilot.records.models import CallRecord, Ticket
from callpilot.records.projection import RecordEvent
from callpilot.records.writer import RecordWriter
from tests.clocks import FakeClock, fake_clock_at
from tests.records_fixtures import FlakyProxy, database, pg_schema_url, sqlite_db  # noqa: F401
from voice_gateway.call_log import CallLog, LifecycleKind

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    """The call log's clock, moved by the test."""
    return fake_clock_at(T0)


@pytest.fixture
def writer(database: Database) -> Iterator[RecordWriter]:  # noqa: F811
    w = RecordWriter(database, retention_days=90).start()
    yield w
    w.close()


def _log(writer: RecordWriter, clock: FakeClock) -> CallLog:
    call_log = CallLog(None, clock=clock)
    call_log.subscribe(writer)
    return call_log


def _row(database: Database, call_id: str) -> CallRecord:  # noqa: F811
    with database.session() as session:
        row = session.scalar(select(CallRecord).where(CallRecord.call_id == call_id))
        assert row is not None, f"no row for {call_id}"
        return row


def _ticket(database: Database, call_id: str) -> Ticket | None:  # noqa: F811
    with database.session() as session:
        return session.scalar(select(Ticket).where(Ticket.call_id == call_id))


def test_a_call_the_bot_handles_is_one_contained_row(database: Database, writer: RecordWriter, clock: FakeClock) -> None:  # noqa: F811
    log = _log(writer, clock)
    log.record("c1", LifecycleKind.STARTED, 0, transport="twilio", caller="+1 617-555-0142", sample_rate=8000)
    clock.advance(0.5)
    log.record("c1", LifecycleKind.ANSWERED, 500, by="bot")  # the greeting's first audio went out
    clock.advance(2.5)
    log.record("c1", LifecycleKind.TURN, 3000, speaker="bot", text="Welcome to Northwind, how can I help?")
    clock.advance(4)
    log.record("c1", LifecycleKind.TURN, 7000, speaker="caller", text="where is order 48215, my card was 4111 1111 1111 1111",
               confidence=0.91, intent="order_status")
    log.record("c1", LifecycleKind.DTMF, 7100, digit="1", source="inband")
    log.record("c1", LifecycleKind.DTMF, 7200, keys="114111111111111111#", source="inband")  # a run of keys
    log.record("c1", LifecycleKind.DTMF, 7300, keys="48215#", source="inband")
    clock.advance(20)
    log.record("c1", LifecycleKind.ENDED, 27000, reason="bot_hangup", recording="results/recordings/c1.wav")
    assert writer.flush(30)

    row = _row(database, "c1")
    assert row.caller_number == "+16175550142"
    assert row.customer_id == "C001"  # found in the contacts table seeded from the demo customers
    assert (row.channel, row.transport, row.status, row.end_reason) == ("voice", "twilio", "completed", "bot_hangup")
    assert row.started_at == T0 and row.answered_at == T0 + timedelta(seconds=0.5)  # not started_at
    assert row.ended_at == T0 + timedelta(seconds=27) and row.duration_s == 27.0
    assert row.contained is True and row.handoff_at is None
    assert row.turns == 1 and row.intents == ["order_status"]
    said = [entry["text"] for entry in row.transcript]
    assert said == ["Welcome to Northwind, how can I help?", "where is order 48215, my card was [card]", "[key 1]",
                    "[keys [card]#]", "[keys 48215#]"]  # a card after menu keys fails Luhn as a whole: still redacted
    assert row.recording_path == str(Path.cwd() / "results/recordings/c1.wav")  # absolute: the purge may run elsewhere
    assert row.retention_days == 90 and row.recording_expires_at == row.ended_at + timedelta(days=90)
    ticket = _ticket(database, "c1")
    assert ticket is not None and ticket.customer_id == "C001" and "resolved by the bot" in ticket.subject


def test_a_handed_off_call_has_queue_agent_wait_talk_and_wrap_up(
    database: Database, writer: RecordWriter, clock: FakeClock  # noqa: F811
) -> None:
    log = _log(writer, clock)
    log.record("c2", LifecycleKind.STARTED, 0, transport="audiosocket", caller="", sample_rate=8000)
    clock.advance(10)
    log.record("c2", LifecycleKind.HANDOFF, 10000, reason="caller_asked", skill="orders", priority=1,
               intents=[{"intent": "order_status", "confidence": 0.9, "timestamp": 1.0},  # HandoffDecision's shape
                        {"name": "human_handoff", "confidence": 0.97}], ivr_path=["main", "orders"])
    clock.advance(45)
    log.record("c2", "agent_connected", 55000, agent_id="a7", agent_name="Maria")  # type: ignore[arg-type]
    clock.advance(120)
    log.record("c2", "agent_left", 175000, reason="hangup")  # type: ignore[arg-type]
    log.record("c2", LifecycleKind.ENDED, 175000, reason="agent_hangup", recording=None)
    clock.advance(30)
    log.record("c2", "wrap_up", 0, agent_id="a7", disposition="refund_issued",  # type: ignore[arg-type]
               notes="refund to card 5500 0000 0000 0004, mail anna.berg@gmail.com")
    assert writer.flush(30)

    row = _row(database, "c2")
    assert row.caller_number is None and row.customer_id is None
    assert (row.queue, row.handoff_reason, row.agent_id, row.agent_name) == ("orders", "caller_asked", "a7", "Maria")
    assert row.contained is False and row.status == "completed"
    assert (row.wait_s, row.talk_s, row.duration_s) == (45.0, 120.0, 175.0)
    assert row.intents == ["order_status", "human_handoff"] and row.ivr_path == ["main", "orders"]
    assert row.disposition == "refund_issued" and row.extra["wrap_up_s"] == 30.0
    assert row.notes == "refund to card [card], mail [email]"
    assert row.recording_path is None and row.recording_expires_at is None
    assert row.answered_at == T0 + timedelta(seconds=55)  # no bot audio logged: the agent answered
    # the agent's part of the call, in the transcript
    assert [(e["speaker"], e["text"]) for e in row.transcript] == [
        ("agent", "[agent Maria joined the call]"), ("agent", "[the agent hung up]"),
        ("agent", "[wrap-up: refund issued] refund to card [card], mail [email]")]
    ticket = _ticket(database, "c2")
    assert ticket is not None and "refund_issued" in ticket.subject and "Notes: refund to card [card]" in ticket.body


def test_the_transcript_drops_empty_bot_lines_and_keeps_the_agent_leg(
    database: Database, writer: RecordWriter, clock: FakeClock  # noqa: F811
) -> None:
    log = _log(writer, clock)
    log.record("c9", LifecycleKind.STARTED, 0, transport="twilio", caller="+16175550142", sample_rate=8000)
    log.record("c9", LifecycleKind.TURN, 200, speaker="bot", text="", planned="Welcome!", interrupted=True)
    clock.advance(2)
    log.record("c9", LifecycleKind.TURN, 2000, speaker="caller", text="a human please")
    log.record("c9", LifecycleKind.TURN, 2500, speaker="bot", text="  ", planned="Connecting you.", interrupted=True)
    log.record("c9", LifecycleKind.HANDOFF, 2600, reason="caller_asked", skill="orders")
    clock.advance(5)
    log.record("c9", LifecycleKind.HANDOFF, 7600, stage="agent_joined", agent_id="ann", agent="Ann")
    log.record("c9", LifecycleKind.HANDOFF, 8000, stage="hold")
    log.record("c9", LifecycleKind.HANDOFF, 9000, stage="unhold")
    log.record("c9", LifecycleKind.HANDOFF, 9500, stage="agent_left", reason="hand_back", requeued=False)
    log.record("c9", LifecycleKind.HANDOFF, 9500, stage="back_to_bot", reason="hand_back")
    log.record("c9", LifecycleKind.ENDED, 12000, reason="caller_hangup")
    assert writer.flush(30)
    row = _row(database, "c9")
    assert [(e["speaker"], e["text"]) for e in row.transcript] == [
        ("caller", "a human please"), ("agent", "[agent Ann joined the call]"),
        ("agent", "[the agent put the caller on hold]"), ("agent", "[the agent took the caller off hold]"),
        ("agent", "[the agent handed the caller back to the bot]"), ("agent", "[back with the bot]")]
    assert row.turns == 1 and row.answered_at == T0 + timedelta(seconds=7)  # nothing heard of the bot: the agent


def test_a_caller_who_hangs_up_in_the_queue_is_abandoned(
    database: Database, writer: RecordWriter, clock: FakeClock  # noqa: F811
) -> None:
    log = _log(writer, clock)
    log.record("c3", LifecycleKind.STARTED, 0, transport="twilio", caller="+16175550187")
    clock.advance(5)
    log.record("c3", LifecycleKind.HANDOFF, 5000, reason="fallback", skill="tech", priority=0)
    clock.advance(80)
    log.record("c3", LifecycleKind.ENDED, 85000, reason="caller_hangup")
    assert writer.flush(30)
    row = _row(database, "c3")
    assert (row.status, row.contained, row.wait_s, row.talk_s, row.agent_id) == ("abandoned", False, 80.0, None, None)
    assert row.customer_id == "C002"


def test_unknown_events_and_events_without_a_start_are_kept(
    database: Database, writer: RecordWriter, clock: FakeClock  # noqa: F811
) -> None:
    writer.submit(RecordEvent("c4", "queue_position", T0, {"position": 3, "expected_wait_s": 40}))
    writer.submit(RecordEvent("c4", "sentiment", T0 + timedelta(seconds=1), {"note": "call me on 617 555 0142"}))
    writer.submit(RecordEvent("c4", "consent", T0 + timedelta(seconds=2), {"granted": True, "language": "en"}))
    assert writer.flush(30)
    row = _row(database, "c4")
    assert row.started_at == T0 and row.status == "in_progress" and row.contained is None
    assert [e["event"] for e in row.extra["events"]] == ["queue_position", "sentiment"]
    assert row.extra["events"][1]["data"] == {"note": "call me on [phone]"}
    assert row.recording_consent is True and row.language == "en"


def test_a_text_conversation_is_a_text_channel_row(database: Database, writer: RecordWriter) -> None:  # noqa: F811
    writer.submit(RecordEvent("chat-1", "started", T0, {"channel": "text", "caller": "web-user-9"}))
    writer.submit(RecordEvent("chat-1", "turn", T0, {"speaker": "caller", "text": "hi, my email is a@b.io"}))
    writer.submit(RecordEvent("chat-1", "ended", T0 + timedelta(minutes=2), {"reason": "session_expired"}))
    assert writer.flush(30)
    row = _row(database, "chat-1")
    assert (row.channel, row.transport, row.caller_number, row.duration_s) == ("text", None, "web-user-9", 120.0)
    assert row.transcript[0]["text"] == "hi, my email is [email]"


def test_submit_never_blocks_and_counts_what_a_full_queue_drops(sqlite_db: Database) -> None:  # noqa: F811
    writer = RecordWriter(sqlite_db, max_queue=2)  # not started: nothing drains the queue
    results = [writer.submit(RecordEvent(f"q{i}", "started", T0, {})) for i in range(3)]
    assert results == [True, True, False]
    assert writer.stats.dropped == 1 and writer.pending == 2
    writer.start()
    assert writer.flush(30)
    writer.close()
    assert writer.stats.written == 2


def test_a_full_queue_spills_to_disk_and_the_writer_writes_it_later_even_after_a_restart(
    sqlite_db: Database, tmp_path: Path  # noqa: F811
) -> None:
    spill = tmp_path / "state" / "records-spill.jsonl"
    writer = RecordWriter(sqlite_db, max_queue=2, spill=spill)  # not started: nothing drains the queue
    results = [writer.submit(RecordEvent(f"s{i}", "started", T0, {"caller": "+8613812345678"})) for i in range(5)]
    assert results == [True] * 5 and writer.stats.dropped == 0 and writer.stats.spilled == 3
    assert len(spill.read_text().splitlines()) == 3
    writer.start()
    assert writer.flush(30)
    for _ in range(100):  # the spilled ones once the queue is quiet
        if writer.stats.replayed == 3:
            break
        time.sleep(0.05)
    writer.close()
    assert writer.stats.replayed == 3 and not spill.exists()
    assert {_row(sqlite_db, f"s{i}").caller_number for i in range(5)} == {"+8613812345678"}
    spill.write_text(json.dumps({"call_id": "s9", "event": "started", "at": T0.isoformat(), "data": {}}) + "\n"
                     + "not json\n")  # what a stopped process left
    restarted = RecordWriter(sqlite_db, spill=spill).start()
    for _ in range(100):
        if restarted.stats.replayed == 1:
            break
        time.sleep(0.05)
    restarted.close()
    assert _row(sqlite_db, "s9").status == "in_progress" and not spill.exists()


def test_a_broken_listener_does_not_break_the_call_log(clock: FakeClock) -> None:
    call_log = CallLog(None, clock=clock)
    seen: list[str] = []

    def broken(_: object) -> None:
        raise RuntimeError("listener bug")

    call_log.subscribe(broken)
    unsubscribe = call_log.subscribe(lambda e: seen.append(e.call_id))
    call_log.record("c5", LifecycleKind.STARTED, 0)
    unsubscribe()
    call_log.record("c5", LifecycleKind.ENDED, 10)
    assert seen == ["c5"] and len(call_log.events) == 2


# The database goes away and comes back: nothing is lost.


def test_the_writer_keeps_events_while_postgresql_is_down_and_writes_them_when_it_returns(
    pg_schema_url: str,  # noqa: F811
) -> None:
    Database(pg_schema_url).upgrade()
    proxy = FlakyProxy(5432)
    flaky = Database(pg_schema_url.replace(":5432/", f":{proxy.port}/"))
    writer = RecordWriter(flaky, first_retry_s=0.05, longest_retry_s=0.2).start()
    try:
        proxy.up.set()
        writer.submit(RecordEvent("pg-1", "started", T0, {"caller": "+16175550142", "transport": "twilio"}))
        assert writer.flush(30)

        proxy.down()  # the database goes away mid-call
        writer.submit(RecordEvent("pg-1", "turn", T0 + timedelta(seconds=2), {"speaker": "caller", "text": "hello"}))
        writer.submit(RecordEvent("pg-1", "ended", T0 + timedelta(seconds=9), {"reason": "caller_hangup"}))
        assert not writer.flush(1.0)  # nothing can be written while it is down...
        assert writer.pending == 2 and writer.stats.retries >= 1

        proxy.up.set()  # ...and it comes back
        assert writer.flush(30)
        assert writer.stats.dropped == 0 and writer.stats.failed == 0
        row = _row(Database(pg_schema_url), "pg-1")
        assert row.transcript[0]["text"] == "hello" and row.duration_s == 9.0 and row.status == "completed"
    finally:
        writer.close()
        flaky.dispose()
        proxy.close()


def test_the_agent_legs_staged_handoff_events_and_the_wrap_up(
    database: Database, writer: RecordWriter, clock: FakeClock  # noqa: F811
) -> None:
    """What the voice pipeline logs for an agent leg and its wrap-up (`handoff` events with a `stage`)."""
    log = _log(writer, clock)
    log.record("c6", LifecycleKind.STARTED, 0, transport="twilio", caller="+16175550142")
    clock.advance(8)
    log.record("c6", LifecycleKind.HANDOFF, 8000, reason="caller_asked", skill="orders", priority=0)
    log.record("c6", LifecycleKind.HANDOFF, 8000, stage="queued", skill="orders")
    clock.advance(20)
    log.record("c6", LifecycleKind.HANDOFF, 28000, stage="agent_joined", agent_id="a1", agent="Li Wei")
    clock.advance(30)
    log.record("c6", LifecycleKind.HANDOFF, 58000, stage="hold")
    clock.advance(10)
    log.record("c6", LifecycleKind.HANDOFF, 68000, stage="unhold")
    clock.advance(50)
    log.record("c6", LifecycleKind.HANDOFF, 118000, stage="agent_left", reason="hangup", requeued=False)
    log.record("c6", LifecycleKind.ENDED, 118000, reason="agent_hangup")
    clock.advance(15)
    # The voice runtime logs the handoff service's wrap-up outcome as a `wrap_up` stage.
    log.record("c6", LifecycleKind.HANDOFF, 0, stage="wrap_up", agent_id="a1", queue="orders", disposition="resolved",
               notes="customer ID 11010519491231002X verified", at=clock(), caller_number="+16175550142")
    assert writer.flush(30)

    row = _row(database, "c6")
    assert (row.queue, row.agent_id, row.agent_name) == ("orders", "a1", "Li Wei")
    assert (row.wait_s, row.talk_s, row.duration_s) == (20.0, 90.0, 118.0)
    assert [entry["stage"] for entry in row.extra["leg"]] == ["hold", "unhold"]
    assert (row.disposition, row.notes) == ("resolved", "customer ID [id] verified")
    assert row.extra["wrap_up_s"] == 15.0  # from the agent leaving to the wrap-up
    assert row.contained is False and row.status == "completed"
    ticket = _ticket(database, "c6")
    assert ticket is not None and "resolved" in ticket.subject


def test_a_wrap_up_from_the_handoff_sink_is_recorded_too(database: Database, writer: RecordWriter) -> None:  # noqa: F811
    writer.submit(RecordEvent("c7", "started", T0, {"caller": "+16175550187"}))
    writer.submit(RecordEvent("c7", "ended", T0 + timedelta(minutes=4), {"reason": "agent_hangup"}))
    writer.record_wrap_up({"kind": "wrap_up", "call_id": "c7", "agent_id": "a2", "disposition": "follow_up",
                           "notes": "call back on 617-555-0187", "at": (T0 + timedelta(minutes=5)).timestamp()})
    assert writer.flush(30)
    row = _row(database, "c7")
    assert (row.disposition, row.notes, row.agent_id) == ("follow_up", "call back on [phone]", "a2")
    ticket = _ticket(database, "c7")
    assert ticket is not None and "follow_up" in ticket.subject


def test_rest_channel_conversations_are_text_records_that_end_when_idle(
    database: Database, writer: RecordWriter, clock: FakeClock  # noqa: F811
) -> None:
    from callpilot.records.text_channel import TextConversations

    now = [T0]
    text = TextConversations(writer.submit, idle_s=600, clock=lambda: now[0])
    first = text.exchange("web-42", "where is order 48215? mail me at jo@example.com",
                          [{"recipient_id": "web-42", "text": "Order 48215 ships tomorrow."}])
    now[0] += timedelta(minutes=2)
    assert text.exchange("web-42", "thanks", [{"recipient_id": "web-42", "text": "You're welcome!"}]) == first
    now[0] += timedelta(minutes=30)  # idle: the next message from anyone ends it
    other = text.exchange("web-7", "hi", [])
    second = text.exchange("web-42", "me again", [])
    assert len({first, other, second}) == 3
    text.close_all()
    assert writer.flush(30)

    row = _row(database, first)
    assert (row.channel, row.caller_number, row.status, row.end_reason) == ("text", "web-42", "completed", "idle")
    assert row.duration_s == 120.0 and row.turns == 2 and row.contained is True
    assert [(t["speaker"], t["text"]) for t in row.transcript] == [
        ("caller", "where is order 48215? mail me at [email]"), ("bot", "Order 48215 ships tomorrow."),
        ("caller", "thanks"), ("bot", "You're welcome!")]
    assert _row(database, second).end_reason == "server_stopped"


def test_talk_time_adds_up_over_a_transfer_and_the_first_answer_is_kept(
    database: Database, writer: RecordWriter, clock: FakeClock  # noqa: F811
) -> None:
    log = _log(writer, clock)
    log.record("c8", LifecycleKind.STARTED, 0, transport="twilio", caller="+16175550142")
    log.record("c8", LifecycleKind.HANDOFF, 0, stage="queued", skill="orders")
    clock.advance(12)
    log.record("c8", LifecycleKind.HANDOFF, 0, stage="agent_joined", agent_id="a1", agent="Ana")
    clock.advance(60)
    log.record("c8", LifecycleKind.HANDOFF, 0, stage="agent_left", reason="transfer", requeued=True)
    clock.advance(25)
    log.record("c8", LifecycleKind.HANDOFF, 0, stage="agent_joined", agent_id="a2", agent="Ben")
    clock.advance(40)
    log.record("c8", LifecycleKind.ENDED, 0, reason="caller_hangup")  # still talking to Ben
    assert writer.flush(30)
    row = _row(database, "c8")
    assert (row.agent_id, row.agent_name, row.queue) == ("a2", "Ben", "orders")
    assert row.agent_connected_at == T0 + timedelta(seconds=12)
    assert (row.wait_s, row.talk_s, row.duration_s, row.status) == (12.0, 100.0, 137.0, "completed")
    assert "talk_from" not in row.extra


def test_a_reused_call_id_never_merges_into_the_earlier_calls_row(database: Database, writer: RecordWriter,  # noqa: F811
                                                                   clock: FakeClock) -> None:
    log = _log(writer, clock)
    log.record("CAreused", LifecycleKind.STARTED, 0, transport="twilio", caller="+16175550142", sample_rate=8000)
    log.record("CAreused", LifecycleKind.TURN, 3000, speaker="caller", text="where is order 48215", intent="order_status")
    clock.advance(30)
    log.record("CAreused", LifecycleKind.ENDED, 30000, reason="hangup")
    assert writer.flush(30)
    first = _row(database, "CAreused")
    clock.advance(600)  # later (another process, or after a restart): a second call arrives with the same id
    log.record("CAreused", LifecycleKind.STARTED, 0, transport="twilio", caller="+13125550147", sample_rate=8000)
    log.record("CAreused", LifecycleKind.TURN, 2000, speaker="caller", text="cancel order 41877", intent="cancel_order")
    log.record("CAreused", LifecycleKind.ENDED, 9000, reason="hangup")
    assert writer.flush(30)
    row = _row(database, "CAreused")
    assert (row.caller_number, row.started_at, row.ended_at) == (first.caller_number, first.started_at, first.ended_at)
    assert [e["text"] for e in row.transcript] == ["where is order 48215"] and row.intents == ["order_status"]
