"""Call-log events -> one `calls` row per call (no I/O: the writer loads and saves the rows).

Each event kind has a handler in `HANDLERS`; an event nobody knows is kept in the row's `extra` so nothing a
newer part of the system logs is lost. Text is redacted before it is stored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.backoffice import normalize_phone
from callpilot.records.models import CallRecord
from callpilot.records.redaction import redact, redact_stored
from callpilot.records.retention import expiry

MAX_UNKNOWN = 50  # unknown events kept per call


@dataclass(frozen=True)
class RecordEvent:
    """A lifecycle event as the records see it: the kind is a plain string so new kinds are accepted."""

    call_id: str
    event: str
    at: datetime
    data: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_call_event(cls, call_event: Any) -> RecordEvent:
        """From a `voice_gateway.call_log.CallEvent` (or anything with call_id, kind, at, data)."""
        kind = getattr(call_event.kind, "value", call_event.kind)
        at = datetime.fromtimestamp(float(call_event.at), UTC)
        return cls(str(call_event.call_id), str(kind), at, dict(call_event.data))


def new_record(event: RecordEvent, *, retention_days: int) -> CallRecord:
    return CallRecord(call_id=event.call_id, channel="voice", status="in_progress", started_at=event.at,
                      ivr_path=[], intents=[], transcript=[], extra={}, turns=0, recording_consent=False,
                      retention_days=retention_days)


def caller_number(raw: object) -> str | None:
    """E.164 when the number is North American; otherwise the digits as given (None when empty)."""
    text = str(raw or "").strip()
    if not text:
        return None
    return normalize_phone(text) or text[:32]


def _seconds(later: datetime, earlier: datetime | None) -> float | None:
    return None if earlier is None else round(max(0.0, (later - earlier).total_seconds()), 3)


def _text(value: object) -> str:
    return redact(str(value)) if value is not None else ""


def _on_started(row: CallRecord, e: RecordEvent) -> None:
    row.started_at = e.at  # answered: when the caller first heard the bot (`answered`) or got a reply
    row.transport = str(e.data["transport"]) if e.data.get("transport") else row.transport
    row.channel = str(e.data.get("channel") or ("voice" if row.transport else "text"))
    row.caller_number = caller_number(e.data.get("caller")) or row.caller_number
    if e.data.get("line"):  # the dialled number's line (settings `lines`)
        row.extra = {**row.extra, "line": str(e.data["line"]), "called": str(e.data.get("called") or "")}


def _on_answered(row: CallRecord, e: RecordEvent) -> None:
    """The caller heard the bot's first audio (the voice pipeline logs it once per call)."""
    row.answered_at = row.answered_at or e.at


def _on_turn(row: CallRecord, e: RecordEvent) -> None:
    speaker = str(e.data.get("speaker", "caller"))
    if speaker == "caller" and e.data.get("leg") != "agent":  # turns with the bot (the agent leg's lines are not)
        row.turns += 1
    elif speaker == "bot" and row.answered_at is None and str(e.data.get("text") or "").strip():
        row.answered_at = e.at  # a text conversation's first reply (or a call log without `answered`)
    text = _text(e.data.get("text")).strip()
    if not text:
        return  # nothing was said or heard (e.g. the caller cut the bot off before its first word)
    entry: dict[str, object] = {"at": e.at.isoformat(), "speaker": speaker, "text": text}
    if e.data.get("interrupted"):
        entry["interrupted"] = True
    if speaker == "caller" and e.data.get("intent"):  # what the NLU understood: the call page's timeline
        entry["intent"] = str(e.data["intent"])
        if isinstance(e.data.get("intent_confidence"), int | float):
            entry["confidence"] = round(float(e.data["intent_confidence"]), 3)
    row.transcript = [*row.transcript, entry]


def _agent_line(row: CallRecord, e: RecordEvent, text: str) -> None:
    """The agent's part of the call in the transcript: what happened on the agent leg, in brackets (the words
    themselves arrive as turns with `leg: agent`, when `agent_transcript` is on)."""
    row.transcript = [*row.transcript, {"at": e.at.isoformat(), "speaker": "agent", "text": _text(text)}]


def _on_dtmf(row: CallRecord, e: RecordEvent) -> None:
    """A run of keys (`keys`, one event per run so that a typed card number is redacted whole) or one key."""
    keys = e.data.get("keys")
    text = f"[keys {redact_stored(str(keys))}]" if keys is not None else f"[key {_text(e.data.get('digit', '?'))}]"
    entry = {"at": e.at.isoformat(), "speaker": "caller", "text": text}
    row.transcript = [*row.transcript, entry]


def _on_handoff(row: CallRecord, e: RecordEvent) -> None:
    """The bot's handoff decision, or (with a `stage`) what happened on the agent leg afterwards."""
    stage = e.data.get("stage")
    if stage is not None:
        STAGES.get(str(stage), _on_other_stage)(row, e)
        return
    row.handoff_at = row.handoff_at or e.at
    row.handoff_reason = str(e.data.get("reason") or row.handoff_reason or "") or None
    row.queue = str(e.data.get("queue") or e.data.get("skill") or row.queue or "") or None
    row.contained = False
    row.caller_number = row.caller_number or caller_number(e.data.get("caller_number"))
    if e.data.get("summary"):
        row.extra = {**row.extra, "handoff_summary": _text(e.data["summary"])}


def _on_queued(row: CallRecord, e: RecordEvent) -> None:
    row.handoff_at = row.handoff_at or e.at
    row.queue = str(e.data.get("queue") or e.data.get("skill") or row.queue or "") or None
    row.contained = False


LEG_WORDS = {"hold": "[the agent put the caller on hold]", "unhold": "[the agent took the caller off hold]",
             "back_to_bot": "[back with the bot]", "voicemail": "[the caller left a voicemail]"}


def _on_other_stage(row: CallRecord, e: RecordEvent) -> None:
    """hold, unhold, back_to_bot, overflow, voicemail ...: kept in order in `extra["leg"]`."""
    stage = str(e.data.get("stage"))
    entry = {"stage": stage, "at": e.at.isoformat(),
             **{k: _jsonable(v) for k, v in e.data.items() if k != "stage"}}
    row.extra = {**row.extra, "leg": [*row.extra.get("leg", []), entry][-MAX_UNKNOWN:]}
    if stage == "voicemail" and e.data.get("path"):  # for the supervisor's list, until marked done
        row.extra = {**row.extra, "voicemail": {"path": _text(e.data["path"]), "at": e.at.isoformat()}}
    if stage in LEG_WORDS:
        _agent_line(row, e, LEG_WORDS[stage])
    elif stage == "overflow":
        _agent_line(row, e, f"[no agent free: {str(e.data.get('action') or 'callback').replace('_', ' ')}]")


def _on_agent_connected(row: CallRecord, e: RecordEvent) -> None:
    """An agent answered: `agent_connected_at` and `wait_s` keep the first answer; talk time is per agent."""
    row.agent_id = str(e.data.get("agent_id") or row.agent_id or "") or None
    name = e.data.get("agent_name") or e.data.get("name") or e.data.get("agent")
    row.agent_name = str(name or row.agent_name or "") or None
    row.agent_connected_at = row.agent_connected_at or e.at
    if row.handoff_at is not None and row.wait_s is None:
        row.wait_s = _seconds(e.at, row.handoff_at)
    row.contained = False
    row.extra = {**row.extra, "talk_from": e.at.isoformat()}
    row.answered_at = row.answered_at or e.at
    _agent_line(row, e, f"[agent {row.agent_name or row.agent_id or ''} joined the call]".replace("  ", " "))


def _stop_talking(row: CallRecord, at: datetime) -> None:
    started = row.extra.get("talk_from")
    if started:
        talked = _seconds(at, datetime.fromisoformat(started)) or 0.0
        row.talk_s = round((row.talk_s or 0.0) + talked, 3)
        row.extra = {k: v for k, v in row.extra.items() if k != "talk_from"}


AGENT_LEFT_WORDS = {"hangup": "hung up", "hand_back": "handed the caller back to the bot",
                    "transfer": "transferred the call", "disconnected": "lost the connection"}


def _on_agent_left(row: CallRecord, e: RecordEvent) -> None:
    _stop_talking(row, e.at)
    reason = str(e.data.get("reason", ""))
    row.extra = {**row.extra, "agent_left": reason, "agent_left_at": e.at.isoformat()}
    how = AGENT_LEFT_WORDS.get(reason, f"left ({reason.replace('_', ' ')})" if reason else "left")
    _agent_line(row, e, f"[the agent {how}]")


def _on_wrap_up(row: CallRecord, e: RecordEvent) -> None:
    """The agent's disposition and notes; `extra["wrap_up_s"]`: from the agent leaving the call to now."""
    left = row.extra.get("agent_left_at")
    since = datetime.fromisoformat(left) if left else row.ended_at
    if since is not None and "wrap_up_s" not in row.extra:
        row.extra = {**row.extra, "wrap_up_s": _seconds(e.at, since)}
    row.disposition = str(e.data.get("disposition") or row.disposition or "") or None
    row.notes = _text(e.data.get("notes")) or row.notes
    notes = _text(e.data.get("notes")).strip()
    outcome = str(e.data.get("disposition") or "").replace("_", " ")
    _agent_line(row, e, f"[wrap-up: {outcome or 'no disposition'}]" + (f" {notes}" if notes else ""))
    row.agent_id = str(e.data.get("agent_id") or row.agent_id or "") or None


def _on_transfer(row: CallRecord, e: RecordEvent) -> None:
    row.queue = str(e.data.get("queue") or row.queue or "") or None


def _on_consent(row: CallRecord, e: RecordEvent) -> None:
    row.recording_consent = bool(e.data.get("granted", True))


def _on_callback(row: CallRecord, e: RecordEvent) -> None:
    """The callback this caller asked for: its state (pending, dialling, completed, failed), attempts, outcomes."""
    row.extra = {**row.extra, "callback": {**dict(e.data), "at": e.at.isoformat()}}


def _on_ended(row: CallRecord, e: RecordEvent) -> None:
    row.ended_at = e.at
    row.duration_s = _seconds(e.at, row.started_at)
    row.end_reason = str(e.data.get("reason") or "") or None
    if row.contained is None:
        row.contained = row.handoff_at is None
    _stop_talking(row, e.at)
    if row.handoff_at is not None and row.agent_connected_at is None and row.wait_s is None:
        row.wait_s = _seconds(e.at, row.handoff_at)  # the caller gave up in the queue
        row.status = "abandoned"
    else:
        row.status = "completed"
    if e.data.get("recording"):
        row.recording_path = absolute_path(e.data["recording"])
    row.recording_expires_at = expiry(row)


def _on_caller_lost(row: CallRecord, e: RecordEvent) -> None:
    """The caller's side died with its process (another process noticed): the call ends here, interrupted."""
    if row.status != "in_progress":
        return
    row.ended_at = e.at
    row.duration_s = _seconds(e.at, row.started_at)
    row.end_reason, row.status = "caller_lost", "interrupted"
    if row.contained is None:
        row.contained = row.handoff_at is None
    _stop_talking(row, e.at)
    row.recording_expires_at = expiry(row)


Handler = Callable[[CallRecord, RecordEvent], None]
# `handoff` events with a `stage` (the voice pipeline's agent leg).
STAGES: dict[str, Handler] = {
    "queued": _on_queued,
    "agent_joined": _on_agent_connected,
    "agent_left": _on_agent_left,
    "wrap_up": _on_wrap_up,
}
HANDLERS: dict[str, Handler] = {
    "caller_lost": _on_caller_lost,
    "started": _on_started,
    "answered": _on_answered,
    "turn": _on_turn,
    "dtmf": _on_dtmf,
    "handoff": _on_handoff,
    "agent_connected": _on_agent_connected,
    "agent_left": _on_agent_left,
    "wrap_up": _on_wrap_up,
    "transfer": _on_transfer,
    "consent": _on_consent,
    "callback": _on_callback,
    "ended": _on_ended,
}


def is_wrap_up(event: RecordEvent) -> bool:
    return event.event == "wrap_up" or (event.event == "handoff" and event.data.get("stage") == "wrap_up")


def apply_event(row: CallRecord, event: RecordEvent) -> None:
    """Fold one event into the call's row; details every event may carry are picked up too."""
    handler = HANDLERS.get(event.event)
    if handler is None:
        kept = [*row.extra.get("events", []), {"event": event.event, "at": event.at.isoformat(),
                                               "data": {k: _jsonable(v) for k, v in event.data.items()}}]
        row.extra = {**row.extra, "events": kept[-MAX_UNKNOWN:]}
    else:
        handler(row, event)
    if event.data.get("language"):
        row.language = str(event.data["language"])[:16]
    if event.data.get("recording_consent") is not None:
        row.recording_consent = bool(event.data["recording_consent"])
    _fold_intents(row, event.data)
    if isinstance(event.data.get("ivr_path"), list | tuple) and event.data["ivr_path"]:
        row.ivr_path = [str(step) for step in event.data["ivr_path"]]


def _score(intent: object, confidence: object = None) -> dict[str, Any] | None:
    """{"intent", "confidence"} from a name or a dict ({"intent"|"name", "confidence"}); None without a name."""
    if isinstance(intent, Mapping):
        confidence = intent.get("confidence")
        intent = intent.get("intent") or intent.get("name")
    if not intent:
        return None
    number = float(confidence) if isinstance(confidence, int | float) and not isinstance(confidence, bool) else None
    return {"intent": str(intent), "confidence": None if number is None else round(number, 3)}


def _fold_intents(row: CallRecord, data: Mapping[str, Any]) -> None:
    """`intents` (a handoff decision's list: the conversation's whole history) replaces what the turns added,
    when it says at least as much; one turn's `intent` (with `intent_confidence`) is appended.
    `row.intents` keeps the names, `extra["intent_scores"]` the same list with the NLU's confidences."""
    known = row.extra.get("intent_scores")
    scores: list[dict[str, Any]] = list(known) if known is not None else [
        {"intent": name, "confidence": None} for name in row.intents]
    history = data.get("intents")
    if isinstance(history, list | tuple) and history:
        named = [s for s in (_score(i) for i in history) if s is not None]
        folded = [s for n, s in enumerate(named) if n == 0 or named[n - 1]["intent"] != s["intent"]]
        if len(folded) >= len(scores):
            scores = folded
    else:
        one = _score(data.get("intent"), data.get("intent_confidence"))
        if one is not None and (not scores or scores[-1]["intent"] != one["intent"]):
            scores.append(one)
    if scores != (known or []):
        row.extra = {**row.extra, "intent_scores": scores[-MAX_UNKNOWN * 4:]}
        row.intents = [s["intent"] for s in scores[-MAX_UNKNOWN * 4:]]


def absolute_path(raw: object) -> str:
    """A recording path as an absolute path (the purge may run from another folder than the server)."""
    return str(Path(str(raw)).expanduser().resolve())


def _jsonable(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return redact(str(value))
