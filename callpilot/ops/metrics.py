"""Prometheus metrics on a per-app `CollectorRegistry` (never the module-global one), fed by the call pipeline.

`CallMetrics` implements the pipeline's observer methods; queue and agent gauges are refreshed from the
handoff service's snapshot when `/metrics` is scraped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "CallMetrics", "FloorView"]

LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)
TEXT = "text"  # the transport of REST-channel conversations
TURN_GAP_BUCKETS = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 8.0)


class QueueLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def waiting(self) -> Sequence[object]: ...
    @property
    def longest_wait_s(self) -> float: ...
    @property
    def agents_available(self) -> int: ...


class AgentLike(Protocol):
    @property
    def status(self) -> object: ...
    @property
    def online(self) -> bool: ...


class WriterLike(Protocol):
    """What metrics read of the records writer (`callpilot.records.writer.RecordWriter`)."""

    @property
    def pending(self) -> int: ...
    @property
    def stats(self) -> Any: ...


class FloorView(Protocol):
    """What metrics and the dashboard read of `handoff`'s `SupervisorView`."""

    @property
    def queues(self) -> Sequence[QueueLike]: ...
    @property
    def agents(self) -> Sequence[AgentLike]: ...


def _label(value: str, limit: int = 40) -> str:
    """Label values come from the outside (end reasons, skills): keep them short and never empty."""
    return (value or "unknown")[:limit]


class CallMetrics:
    """Every callpilot metric, registered on this object's own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.calls_in_progress = Gauge("callpilot_calls_in_progress", "Calls connected right now", registry=r)
        self.text_open = Gauge("callpilot_text_conversations_open", "Text conversations not ended yet",
                               registry=r)
        self.calls_started = Counter("callpilot_calls_started", "Calls started", ["transport"], registry=r)
        self.calls_ended = Counter("callpilot_calls_ended", "Calls ended", ["reason"], registry=r)
        self.handoffs = Counter("callpilot_handoffs", "Handoffs requested to agents", ["skill"], registry=r)
        self.errors = Counter("callpilot_errors", "Errors inside calls", ["where"], registry=r)
        self.calls_rejected = Counter("callpilot_calls_rejected", "Calls refused before they started",
                                      ["transport", "reason"], registry=r)
        self.turn_gap = Histogram("callpilot_turn_gap_seconds", "Caller's last voice to the bot's first audio",
                                  buckets=TURN_GAP_BUCKETS, registry=r)
        self.asr_latency = Histogram("callpilot_asr_latency_seconds", "VAD + ASR step that produced a final",
                                     buckets=LATENCY_BUCKETS, registry=r)
        self.tts_latency = Histogram("callpilot_tts_first_audio_seconds", "Text to its first synthesised audio",
                                     buckets=LATENCY_BUCKETS, registry=r)
        self.queue_waiting = Gauge("callpilot_queue_waiting_calls", "Callers waiting in a queue", ["queue"],
                                   registry=r)
        self.queue_longest_wait = Gauge("callpilot_queue_longest_wait_seconds", "Longest current wait in a queue",
                                        ["queue"], registry=r)
        self.queue_agents_available = Gauge("callpilot_queue_agents_available", "Agents free for a queue",
                                            ["queue"], registry=r)
        self.agents = Gauge("callpilot_agents", "Online agents by status", ["status"], registry=r)
        self.webhooks_dropped = Gauge("callpilot_webhooks_dropped", "Webhook events dropped (queue full)",
                                      registry=r)
        self.asr_worker_restarts = Gauge("callpilot_asr_worker_restarts",
                                         "ASR worker processes that died and were replaced since start", registry=r)
        self.records_pending = Gauge("callpilot_records_pending_events",
                                     "Call events not yet written to the records database (it grows while the "
                                     "database is away)", registry=r)
        self.records_events = Gauge("callpilot_records_events", "Call events since start by what happened to them: "
                                    "written, retries, spilled (kept on disk), replayed, dropped, failed",
                                    ["outcome"], registry=r)
        self._live: set[str] = set()
        self._texts: set[str] = set()  # text conversations (transport "text") are counted apart from calls

    # The pipeline's observer methods.

    def on_call_started(self, call_id: str, transport: str, caller: str) -> None:
        (self._texts if transport == TEXT else self._live).add(call_id)
        self._set_open()
        self.calls_started.labels(_label(transport)).inc()

    def on_call_ended(self, call_id: str, reason: str) -> None:
        self._live.discard(call_id)
        self._texts.discard(call_id)
        self._set_open()
        self.calls_ended.labels(_label(reason)).inc()

    def _set_open(self) -> None:
        self.calls_in_progress.set(len(self._live))
        self.text_open.set(len(self._texts))

    def on_turn_gap(self, call_id: str, gap_ms: float) -> None:
        self.turn_gap.observe(max(0.0, gap_ms) / 1000)

    def on_asr_final(self, call_id: str, decode_ms: float) -> None:
        self.asr_latency.observe(decode_ms / 1000)

    def on_tts_first_audio(self, call_id: str, latency_ms: float) -> None:
        self.tts_latency.observe(latency_ms / 1000)

    def on_handoff(self, call_id: str, skill: str, reason: str) -> None:
        self.handoffs.labels(_label(skill)).inc()

    def on_error(self, call_id: str, where: str) -> None:
        self.errors.labels(_label(where)).inc()

    def on_call_rejected(self, transport: str, reason: str) -> None:
        self.calls_rejected.labels(_label(transport), _label(reason)).inc()

    # Scrape time.

    def update_floor(self, view: FloorView) -> None:
        """Queue and agent gauges from a handoff snapshot (queues that vanished drop out)."""
        for gauge in (self.queue_waiting, self.queue_longest_wait, self.queue_agents_available, self.agents):
            gauge.clear()
        for queue in view.queues:
            self.queue_waiting.labels(queue.name).set(len(queue.waiting))
            self.queue_longest_wait.labels(queue.name).set(queue.longest_wait_s)
            self.queue_agents_available.labels(queue.name).set(queue.agents_available)
        by_status: dict[str, int] = {}
        for agent in view.agents:
            if agent.online:
                status = str(getattr(agent.status, "value", agent.status))
                by_status[status] = by_status.get(status, 0) + 1
        for status, count in by_status.items():
            self.agents.labels(status).set(count)

    def update_records(self, writer: WriterLike) -> None:
        self.records_pending.set(writer.pending)
        for outcome in ("written", "retries", "spilled", "replayed", "dropped", "failed"):
            self.records_events.labels(outcome).set(getattr(writer.stats, outcome))

    def render(self) -> bytes:
        return generate_latest(self.registry)
