"""What a call leaves behind: lifecycle events in the call log, the bot's utterances as heard, the
recording and a voicemail. Kept apart from the call pipeline so the records' shape lives in one place."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from voice_gateway.call_log import CallLog, LifecycleKind
from voice_gateway.pipeline.state import CallState, TranscriptLine
from voice_gateway.recording import RecordingFile
from voice_gateway.transports.call_ids import file_for_call

KEY_RUN_LIMIT = 64  # keys held back at most before they are logged anyway


@dataclass(frozen=True)
class _Key:
    digit: str
    call_ms: float
    source: object
    leg: object


class CallLogEntries:
    """One call's entries in the call log (JSON lines, read by the records writer).

    Keys are logged as runs, one `dtmf` event with `keys="4111111111111111#"` rather than one event per key:
    a card number typed on the keypad is then one string that redaction can recognise, never sixteen
    harmless-looking digits. A run ends with `#` or `*`, the caller's next words or any other event (the bot's
    first audio and its prompts between menu keys do not end it), a change of leg, or KEY_RUN_LIMIT keys.
    """

    def __init__(self, state: CallState, call_log: CallLog, recordings_dir: Path) -> None:
        self.state = state
        self.call_log = call_log
        self.recordings_dir = recordings_dir
        self._keys: list[_Key] = []
        self._voicemail: RecordingFile | None = None

    def log(self, kind: LifecycleKind, **data: object) -> None:
        if kind is LifecycleKind.DTMF:
            self._add_key(data)
            return
        bot_side = kind is LifecycleKind.ANSWERED or (kind is LifecycleKind.TURN and data.get("speaker") == "bot")
        if not bot_side:  # the bot starting to talk or prompting between menu keys does not end a run
            self.flush_keys()
        self.call_log.record(self.state.call_id, kind, self.state.clock_ms, **data)

    def _add_key(self, data: dict[str, object]) -> None:
        key = _Key(str(data.get("digit", "")), self.state.clock_ms, data.get("source"), data.get("leg"))
        if self._keys and self._keys[-1].leg != key.leg:
            self.flush_keys()
        self._keys.append(key)
        if key.digit in "*#" or len(self._keys) >= KEY_RUN_LIMIT:  # "#" enters what was typed
            self.flush_keys()

    def flush_keys(self) -> None:
        """Log the keys held back as one event (at the first key's position in the call)."""
        if not self._keys:
            return
        first, keys = self._keys[0], "".join(k.digit for k in self._keys)
        self._keys = []
        extra = {"leg": first.leg} if first.leg is not None else {}
        self.call_log.record(self.state.call_id, LifecycleKind.DTMF, first.call_ms, keys=keys,
                             source=first.source, **extra)

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
        """The call's WAV in the recordings folder (BadCallId if the id would lead out of it)."""
        return file_for_call(self.recordings_dir, self.state.call_id)

    def voicemail_audio(self, pcm16: bytes) -> None:
        """The caller's message as it comes: streamed to a hidden file next to the recordings (never all in RAM);
        a disk that fails loses the message, not the call."""
        if self._voicemail is None:
            target = file_for_call(self.recordings_dir, self.state.call_id, prefix="voicemail-")
            self._voicemail = RecordingFile(target, self.state.sample_rate, channels=1)
        try:
            self._voicemail.write(pcm16)
        except OSError:
            self._voicemail.abandon()
            self._voicemail = None
            self.log(LifecycleKind.HANDOFF, stage="voicemail_failed")

    def save_voicemail(self) -> Path | None:
        """The message as a mono WAV (only the caller speaks), logged as a handoff stage."""
        if self._voicemail is None:
            return None
        path, self._voicemail = self._voicemail.finish(), None
        self.log(LifecycleKind.HANDOFF, stage="voicemail", path=str(path))
        return path
