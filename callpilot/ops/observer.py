"""The pipeline observer callpilot installs: every call event goes to the metrics and, as a webhook, out."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from callpilot.ops.metrics import CallMetrics
from callpilot.ops.webhooks import WebhookDispatcher

log = logging.getLogger("callpilot.ops")


class OpsObserver:
    """Implements `voice_gateway.pipeline.PipelineObserver`; a failure here is logged, never raised into a call."""

    def __init__(
        self,
        metrics: CallMetrics,
        hooks: WebhookDispatcher | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.metrics = metrics
        self.hooks = hooks
        self.clock = clock

    def _emit(self, event: str, payload: dict[str, object]) -> None:
        if self.hooks is not None:
            self.hooks.emit(event, {**payload, "at": self.clock().isoformat()})

    def _safely(self, work: Callable[[], None]) -> None:
        try:
            work()
        except Exception:
            log.exception("operations observer failed")

    def on_call_started(self, call_id: str, transport: str, caller: str) -> None:
        def work() -> None:
            self.metrics.on_call_started(call_id, transport, caller)
            self._emit("call.started", {"call_id": call_id, "transport": transport, "caller": caller or None})

        self._safely(work)

    def on_call_ended(self, call_id: str, reason: str) -> None:
        def work() -> None:
            self.metrics.on_call_ended(call_id, reason)
            self._emit("call.ended", {"call_id": call_id, "reason": reason})

        self._safely(work)

    def on_handoff(self, call_id: str, skill: str, reason: str) -> None:
        def work() -> None:
            self.metrics.on_handoff(call_id, skill, reason)
            self._emit("handoff.requested", {"call_id": call_id, "skill": skill, "reason": reason})

        self._safely(work)

    def on_turn_gap(self, call_id: str, gap_ms: float) -> None:
        self._safely(lambda: self.metrics.on_turn_gap(call_id, gap_ms))

    def on_asr_final(self, call_id: str, decode_ms: float) -> None:
        self._safely(lambda: self.metrics.on_asr_final(call_id, decode_ms))

    def on_tts_first_audio(self, call_id: str, latency_ms: float) -> None:
        self._safely(lambda: self.metrics.on_tts_first_audio(call_id, latency_ms))

    def on_error(self, call_id: str, where: str) -> None:
        self._safely(lambda: self.metrics.on_error(call_id, where))

    def on_call_rejected(self, transport: str, reason: str) -> None:
        self._safely(lambda: self.metrics.on_call_rejected(transport, reason))
