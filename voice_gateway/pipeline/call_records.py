"""What a call leaves behind: lifecycle events in the call log, the bot's utterances as heard, the
recording and a voicemail. Kept apart from the call pipeline so the records' shape lives in one place."""

from __future__ import annotations

import wave
from pathlib import Path

from voice_gateway.call_log import CallLog, LifecycleKind
from voice_gateway.pipeline.state import CallState, TranscriptLine


class CallRecords:
    """One call's entries in the call log (JSON lines, read by the records writer)."""

    def __init__(self, state: CallState, call_log: CallLog, recordings_dir: Path) -> None:
        self.state = state
        self.call_log = call_log
        self.recordings_dir = recordings_dir

    def log(self, kind: LifecycleKind, **data: object) -> None:
        self.call_log.record(self.state.call_id, kind, self.state.clock_ms, **data)

    def bot_utterances(self, *, interrupted: bool) -> None:
        """Log what the caller heard of each utterance not logged yet (the last one may be cut short)."""
        state = self.state
        for utterance in range(state.utterances_logged + 1, state.utterances + 1):
            heard, planned = state.heard_text(utterance), state.planned_text(utterance)
            cut = interrupted and heard != planned
            state.transcript.append(TranscriptLine("bot", heard, int(state.clock_ms), interrupted=cut))
            self.log(LifecycleKind.TURN, speaker="bot", text=heard, planned=planned, interrupted=cut)
        state.utterances_logged = state.utterances

    def recording_path(self) -> Path:
        return (self.recordings_dir / f"{self.state.call_id}.wav").resolve()

    def save_voicemail(self, pcm16: bytes) -> Path:
        """The caller's message as a mono WAV (only the caller speaks), logged as a handoff stage."""
        path = (self.recordings_dir / f"voicemail-{self.state.call_id}.wav").resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(self.state.sample_rate)
            out.writeframes(pcm16)
        self.log(LifecycleKind.HANDOFF, stage="voicemail", path=str(path))
        return path
