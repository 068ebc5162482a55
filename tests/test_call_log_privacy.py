"""The call-log file (`results/calls.jsonl`, also the wrap-ups' file): redacted as written, owner-only, rotated
daily, keys typed on the keypad logged as runs so that a card number is redacted whole."""

from __future__ import annotations

import json
import re
import stat
from datetime import UTC, date, datetime
from pathlib import Path

from callpilot.handoff_port import wrap_up_to_file
from callpilot.records.redaction import redact_stored
from tests.clocks import FakeClock
from voice_gateway.call_log import (
    CallEvent,
    CallLog,
    LifecycleKind,
    purge_call_logs,
    read_call_log,
    rotated_call_logs,
)
from voice_gateway.pipeline.call_log_entries import CallLogEntries
from voice_gateway.pipeline.state import CallState

CARD = "4111111111111111"  # passes the Luhn check
DAY1 = datetime(2026, 6, 1, 23, 59, tzinfo=UTC).timestamp()
DAY2 = datetime(2026, 6, 2, 0, 1, tzinfo=UTC).timestamp()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_lines_are_redacted_as_written_and_listeners_see_the_event(tmp_path: Path) -> None:
    path = tmp_path / "new" / "results" / "calls.jsonl"
    log = CallLog(path, clock=lambda: DAY1, redact=redact_stored)
    heard: list[CallEvent] = []
    log.subscribe(heard.append)
    log.record("c1", LifecycleKind.STARTED, 0, transport="twilio", caller="+16175550142")
    log.record("c1", LifecycleKind.TURN, 900, speaker="caller", text=f"card {CARD}, mail jo@example.com",
               extra={"numbers": ["+1 617 555 0187"]})
    text = path.read_text(encoding="utf-8")
    assert "+16175550142" not in text and CARD not in text and "jo@example.com" not in text
    assert "617 555 0187" not in text
    started, turn = read_call_log(path)
    assert started.data["caller"] == "[phone]" and turn.data["text"] == "card [card], mail [email]"
    assert heard[0].data["caller"] == "+16175550142"  # the records writer still finds the contact by number
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700 and _mode(path.parent.parent) == 0o700


def test_an_existing_readable_file_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    path.write_text("", encoding="utf-8")
    path.chmod(0o644)
    CallLog(path, clock=lambda: DAY1).record("c1", LifecycleKind.ENDED, 0)
    assert _mode(path) == 0o600


def test_the_file_is_rotated_when_the_day_changes_even_with_two_writers(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    clock = FakeClock(DAY1)
    voice, wrap_ups = CallLog(path, clock=clock), CallLog(path, clock=clock)
    voice.record("c1", LifecycleKind.STARTED, 0)
    wrap_ups.record("c1", LifecycleKind.HANDOFF, 0, stage="wrap_up")
    clock.now = DAY2
    voice.record("c2", LifecycleKind.STARTED, 0)
    wrap_ups.record("c2", LifecycleKind.HANDOFF, 0, stage="wrap_up")
    (day, old), = rotated_call_logs(path)
    assert day == date(2026, 6, 1) and old.name == "calls.2026-06-01.jsonl"
    assert [e.call_id for e in read_call_log(old)] == ["c1", "c1"]
    assert [e.call_id for e in read_call_log(path)] == ["c2", "c2"]
    assert _mode(old) == 0o600


def test_purge_deletes_days_past_the_retention_and_rotates_a_stale_file(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    for day in ("2026-01-01", "2026-03-01", "2026-03-30"):
        (tmp_path / f"calls.{day}.jsonl").write_text("{}\n", encoding="utf-8")
    (tmp_path / "calls.notes.jsonl").write_text("kept: not a rotated day\n", encoding="utf-8")
    stamp = datetime(2026, 3, 31, 10, tzinfo=UTC).timestamp()
    CallLog(path, clock=lambda: stamp).record("c9", LifecycleKind.ENDED, 0)
    gone = purge_call_logs(path, date(2026, 4, 2), keep_days=30)
    assert sorted(p.name for p in gone) == ["calls.2026-01-01.jsonl", "calls.2026-03-01.jsonl"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "calls.2026-03-30.jsonl", "calls.2026-03-31.jsonl", "calls.notes.jsonl"]


def _typed(records: CallLogEntries, state: CallState, keys: str, *, bot_between: bool = False) -> None:
    for key in keys:
        state.clock_ms += 300
        records.log(LifecycleKind.DTMF, digit=key, source="transport")
        if bot_between:
            records.log(LifecycleKind.TURN, speaker="bot", text="For orders, press 1.")


def test_a_card_typed_key_by_key_never_reaches_the_file(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    log = CallLog(path, clock=lambda: DAY1, redact=redact_stored)
    seen: list[CallEvent] = []
    log.subscribe(seen.append)
    state = CallState("c1", "twilio", 8000, caller="+16175550142")
    records = CallLogEntries(state, log, tmp_path)
    _typed(records, state, "11", bot_between=True)  # menu choices: the bot answers each key
    _typed(records, state, CARD + "#")
    records.log(LifecycleKind.TURN, speaker="caller", text="did you get it")
    _typed(records, state, "5")
    records.log(LifecycleKind.ENDED, reason="caller_hangup")
    keys = [e for e in read_call_log(path) if e.kind is LifecycleKind.DTMF]
    assert [e.data["keys"] for e in keys] == ["[card]#", "5"]
    assert keys[0].call_ms == 300  # where the run began
    digits = "".join(re.findall(r"\d", path.read_text(encoding="utf-8")))
    assert CARD not in digits and "41111111" not in path.read_text(encoding="utf-8")
    assert [e.data["keys"] for e in seen if e.kind is LifecycleKind.DTMF] == ["11" + CARD + "#", "5"]


def test_a_key_run_ends_with_the_leg(tmp_path: Path) -> None:
    log = CallLog(None)
    state = CallState("c1", "twilio", 8000)
    records = CallLogEntries(state, log, tmp_path)
    records.log(LifecycleKind.DTMF, digit="9", source="transport", leg="queued")
    records.log(LifecycleKind.DTMF, digit="5", source="transport", leg="agent")
    records.log(LifecycleKind.DTMF, digit="#", source="transport", leg="agent")
    records.flush_keys()
    assert [(e.data["keys"], e.data["leg"]) for e in log.events] == [("9", "queued"), ("5#", "agent")]


def test_wrap_ups_go_to_the_file_redacted(tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    record = wrap_up_to_file(path)
    record({"call_id": "c1", "kind": "wrap_up", "agent_id": "ann", "disposition": "resolved",
            "notes": f"Caller read card {CARD}, call back on +16175550142 or jo@example.com"})
    (line,) = path.read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["notes"] == "Caller read card [card], call back on [phone] or [email]"
    assert _mode(path) == 0o600
