"""Hook points for operations (metrics, webhooks): the pipeline reports what happened, the app decides what to do.

`voice_gateway` never imports `callpilot`; callpilot hands its observer to `VoiceServices.observer`.
An observer is called on the event loop inside a call, so it must return at once and never raise.
"""

from __future__ import annotations

from typing import Protocol


class PipelineObserver(Protocol):
    """What a call tells the outside world; every method must be quick and must not raise."""

    def on_call_started(self, call_id: str, transport: str, caller: str) -> None: ...

    def on_turn_gap(self, call_id: str, gap_ms: float) -> None:
        """The caller's last voiced frame -> the first bot frame sent back."""

    def on_asr_final(self, call_id: str, decode_ms: float) -> None:
        """Wall time of the VAD + ASR step that produced a final transcript."""

    def on_tts_first_audio(self, call_id: str, latency_ms: float) -> None:
        """Wall time from a text to speak to its first synthesised sentence."""

    def on_handoff(self, call_id: str, skill: str, reason: str) -> None: ...

    def on_error(self, call_id: str, where: str) -> None:
        """Something failed inside the call (`where`: "tts", "asr", "transport", ...)."""

    def on_call_ended(self, call_id: str, reason: str) -> None: ...

    def on_call_rejected(self, transport: str, reason: str) -> None:
        """A call refused before it started (`reason`: busy, rate_limited, forbidden)."""


class NullObserver:
    """The default: nobody is listening."""

    def on_call_started(self, call_id: str, transport: str, caller: str) -> None:
        pass

    def on_turn_gap(self, call_id: str, gap_ms: float) -> None:
        pass

    def on_asr_final(self, call_id: str, decode_ms: float) -> None:
        pass

    def on_tts_first_audio(self, call_id: str, latency_ms: float) -> None:
        pass

    def on_handoff(self, call_id: str, skill: str, reason: str) -> None:
        pass

    def on_error(self, call_id: str, where: str) -> None:
        pass

    def on_call_ended(self, call_id: str, reason: str) -> None:
        pass

    def on_call_rejected(self, transport: str, reason: str) -> None:
        pass
