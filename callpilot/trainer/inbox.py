"""The inbox's intake: which caller turns land there, and storing them with near-identical texts merged.

A turn lands when the NLU fell back (`nlu_fallback` / `out_of_scope`), understood it with a confidence under
`inbox_confidence_threshold`, led to a handoff, or was followed by the caller correcting or repeating
themselves. Turns arrive on the conversation's thread; they are written by one background thread so a
database hiccup never slows a turn down.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from rapidfuzz import fuzz
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.dialogue import BotTurn
from callpilot.records.db import Database
from callpilot.records.models import InboxItem, utcnow
from callpilot.records.redaction import redact_stored

log = logging.getLogger("callpilot.trainer")

NOT_UNDERSTOOD = frozenset({"nlu_fallback", "out_of_scope"})
NEAR_IDENTICAL = 90.0  # RapidFuzz ratio at or above which two texts are one item
REPEATED = 80.0  # the caller said (nearly) the same thing again
_CORRECTION = re.compile(r"^(no\b|nope\b|not that\b|that's not\b|that is not\b|i said\b|i mean\b|i meant\b|"
                         r"you misunderstood\b|wrong\b)", re.IGNORECASE)
_PUNCTUATION = re.compile(r"[^\w\s]+")
_SPACES = re.compile(r"\s+")
MAX_KEY = 255
SENDERS_KEPT = 10_000
SENDER_IDLE = timedelta(minutes=30)  # a caller's last turn is forgotten this long after it (their call is over)


def text_key(text: str) -> str:
    """Lower case, punctuation and repeated spaces gone: "Where's my ORDER?" and "wheres my order" match."""
    return _SPACES.sub(" ", _PUNCTUATION.sub("", text.lower())).strip()[:MAX_KEY]


def reason_for(intent: str | None, confidence: float | None, *, handed_over: bool, threshold: float) -> str | None:
    """Why a turn the NLU read as `intent` (at `confidence`) belongs in the inbox (None: it does not)."""
    if intent in NOT_UNDERSTOOD:
        return "fallback"
    if handed_over:
        return "handoff"
    if intent is not None and confidence is not None and confidence < threshold:
        return "low_confidence"
    return None


def corrects(previous: str, text: str) -> bool:
    """Does `text` correct or repeat `previous` (the caller's turn just before)? A short answer said twice
    ("yes", "yes") is two answers, not a repetition."""
    if _CORRECTION.match(text.strip()):
        return True
    return len(text_key(previous).split()) >= 3 and fuzz.ratio(text_key(previous), text_key(text)) >= REPEATED


@dataclass(frozen=True)
class Sighting:
    """One caller turn for the inbox."""

    text: str
    reason: str
    call_id: str
    channel: str
    predicted_intent: str | None
    confidence: float | None
    language: str | None = None
    at: datetime = field(default_factory=utcnow)


def store_sighting(session: Session, sighting: Sighting) -> InboxItem:
    """Add to the open item with the same or a near-identical text, else a new item."""
    text = redact_stored(sighting.text)
    key = text_key(text)
    item = session.scalars(select(InboxItem).where(InboxItem.status == "open", InboxItem.text_key == key)
                           .limit(1)).first()
    if item is None and key:
        for candidate in session.scalars(select(InboxItem).where(InboxItem.status == "open")
                                         .order_by(InboxItem.last_seen_at.desc()).limit(500)):
            if fuzz.ratio(candidate.text_key, key) >= NEAR_IDENTICAL:
                item = candidate
                break
    confidence = None if sighting.confidence is None else round(float(sighting.confidence), 4)
    if item is None:
        item = InboxItem(text=text, text_key=key, language=sighting.language,
                         predicted_intent=sighting.predicted_intent,
                         confidence=confidence, reason=sighting.reason, call_id=sighting.call_id,
                         channel=sighting.channel, count=1, first_seen_at=sighting.at, last_seen_at=sighting.at,
                         status="open", resolution={})
        session.add(item)
    else:
        item.count += 1
        item.last_seen_at = sighting.at
        item.call_id, item.channel = sighting.call_id, sighting.channel
        item.predicted_intent, item.confidence = sighting.predicted_intent, confidence
    session.flush()
    return item


def guess_language(text: str) -> str:
    return "zh" if any("\u4e00" <= char <= "\u9fff" for char in text) else "en"


class InboxRecorder:
    """A `TurnObserver` for every dialogue engine: picks the inbox's turns and writes them in the background."""

    def __init__(self, database: Database, *, threshold: float,
                 call_id_of: Callable[[str], str | None] = lambda sender: None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.database = database
        self.clock = clock
        self.threshold = threshold
        self.call_id_of = call_id_of  # sender -> call id (the REST channel's text conversations)
        self._last: OrderedDict[str, Sighting] = OrderedDict()  # each sender's previous caller turn
        self._lock = threading.Lock()
        self._queue: queue.Queue[Sighting | None] = queue.Queue(maxsize=10_000)
        self._idle = threading.Event()
        self._idle.set()
        self._thread: threading.Thread | None = None

    def __call__(self, sender_id: str, channel: str, text: str, turn: BotTurn) -> None:
        """A turn of callpilot's own dialogue engine (a `TurnObserver`)."""
        self.heard(sender_id, channel, text, turn.debug.intent, turn.debug.confidence,
                   handed_over=turn.handoff is not None)

    def heard(self, sender_id: str, channel: str, text: str, intent: str | None, confidence: float | None, *,
              handed_over: bool = False) -> None:
        """A caller turn and what the NLU made of it, from any brain (callpilot's engine, a Rasa server)."""
        reason = reason_for(intent, confidence, handed_over=handed_over, threshold=self.threshold)
        sighting = Sighting(text=text, reason=reason or "", call_id=self.call_id_of(sender_id) or sender_id,
                            channel=channel, predicted_intent=intent, confidence=confidence,
                            language=guess_language(text), at=self.clock())
        with self._lock:
            self._forget_idle(sighting.at)  # first: a turn of the same number's earlier call is no previous turn
            previous = self._last.pop(sender_id, None)
            self._last[sender_id] = sighting
        if previous is not None and not previous.reason and corrects(previous.text, text):
            self._put(Sighting(**{**previous.__dict__, "reason": "corrected"}))
        if reason:
            self._put(sighting)

    def _forget_idle(self, now: datetime) -> None:
        """Senders in the order of their last turn: the oldest go once idle, or to make room for one more."""
        while self._last:
            oldest = next(iter(self._last.values()))
            if len(self._last) < SENDERS_KEPT and now - oldest.at <= SENDER_IDLE:
                return
            self._last.popitem(last=False)

    @property
    def senders_followed(self) -> int:
        """Senders whose last turn is kept (to tell a correction): those heard in the last `SENDER_IDLE`."""
        with self._lock:
            return len(self._last)

    def _put(self, sighting: Sighting) -> None:
        self.start()
        self._idle.clear()
        try:
            self._queue.put_nowait(sighting)
        except queue.Full:
            log.warning("inbox queue full: a turn was not kept")

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True, name="trainer-inbox")
            self._thread.start()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted is written (tests, shutdown)."""
        if self._queue.unfinished_tasks == 0:
            return True
        return self._idle.wait(timeout)

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while True:
            sighting = self._queue.get()
            try:
                if sighting is None:
                    return
                with self.database.session() as session:
                    store_sighting(session, sighting)
            except Exception:
                log.exception("could not store an inbox item")
            finally:
                self._queue.task_done()
                if self._queue.unfinished_tasks == 0:
                    self._idle.set()
