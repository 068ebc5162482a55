"""Per-frame speech/no-speech classifiers: Silero (ONNX, bundled with faster-whisper) and WebRTC VAD."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from voice_gateway.audio import pcm16_to_float

SUPPORTED_RATES = (8000, 16000)


class FrameClassifier(Protocol):
    """Decides, per 20 ms frame of 16-bit mono PCM, whether the caller is speaking (one per call);
    ``probability`` is how sure the latest frame is speech (0..1)."""

    probability: float

    def is_speech(self, pcm16: bytes) -> bool: ...


class VadBackend(Protocol):
    """A loaded VAD model shared by all calls; hands each call its own classifier state."""

    def classifier(self, sample_rate: int) -> FrameClassifier: ...


def _check_rate(sample_rate: int) -> None:
    if sample_rate not in SUPPORTED_RATES:
        raise ValueError(f"unsupported sample rate {sample_rate}: use one of {SUPPORTED_RATES}")


class SileroVad:
    """Silero VAD v6 (16 kHz ONNX model shipped in faster_whisper/assets), one session for all calls.

    A chunk quieter than `quiet_dbfs` (RMS re full scale; a silent line, a caller on mute) is not speech and
    skips the model (the bulk of a call is the caller listening: this is most of the VAD's cost on the event
    loop); the recurrent state is kept across such chunks and cleared after `QUIET_RESET_CHUNKS` of them, so
    the next words start from the state a call starts with. None: every chunk goes through the model."""

    CHUNK = 512
    CONTEXT = 64
    QUIET_RESET_CHUNKS = 10  # 320 ms

    def __init__(self, model_path: Path | None = None, *, threshold: float = 0.5, release: float = 0.35,
                 quiet_dbfs: float | None = -60.0) -> None:
        import onnxruntime

        if model_path is None:
            from faster_whisper.utils import get_assets_path

            model_path = Path(get_assets_path()) / "silero_vad_v6.onnx"
        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = 1
        options.log_severity_level = 4
        self.session: Any = onnxruntime.InferenceSession(
            str(model_path), providers=["CPUExecutionProvider"], sess_options=options
        )
        self.threshold = threshold
        self.release = release
        self.quiet_power = None if quiet_dbfs is None else 10 ** (quiet_dbfs / 10)

    def classifier(self, sample_rate: int) -> SileroClassifier:
        """A fresh per-call recurrent state over the shared session."""
        _check_rate(sample_rate)
        return SileroClassifier(self, sample_rate)


class SileroClassifier:
    """Streams 20 ms frames into 32 ms Silero chunks; hysteresis between threshold and release."""

    def __init__(self, model: SileroVad, sample_rate: int) -> None:
        self._model = model
        self._upsample = sample_rate == 8000
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(SileroVad.CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)
        self._last_sample = np.float32(0.0)
        self._speaking = False
        self._quiet_chunks = 0
        self.probability = 0.0
        self.model_runs = 0

    def is_speech(self, pcm16: bytes) -> bool:
        """Feed one frame; the decision follows the newest complete chunk."""
        audio = pcm16_to_float(pcm16)
        if self._upsample and audio.size:
            audio = self._to_16k(audio)
        self._pending = np.concatenate([self._pending, audio])
        while self._pending.size >= SileroVad.CHUNK:
            chunk, self._pending = self._pending[: SileroVad.CHUNK], self._pending[SileroVad.CHUNK :]
            self.probability = self._run(chunk)
            if self.probability >= self._model.threshold:
                self._speaking = True
            elif self.probability < self._model.release:
                self._speaking = False
        return self._speaking

    def _to_16k(self, audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Linear 2x upsampling, continuous across frames (good enough for voice activity)."""
        previous = np.concatenate([[self._last_sample], audio[:-1]])
        out = np.empty(audio.size * 2, dtype=np.float32)
        out[0::2] = (previous + audio) / 2
        out[1::2] = audio
        self._last_sample = audio[-1]
        return out

    def _run(self, chunk: npt.NDArray[np.float32]) -> float:
        quiet = self._model.quiet_power
        if quiet is not None and float(np.dot(chunk, chunk)) < quiet * chunk.size:
            self._quiet_chunks += 1
            if self._quiet_chunks == SileroVad.QUIET_RESET_CHUNKS:
                self._h, self._c = np.zeros_like(self._h), np.zeros_like(self._c)
                self._context = np.zeros(SileroVad.CONTEXT, dtype=np.float32)
            return 0.0
        self._quiet_chunks = 0
        self.model_runs += 1
        batch = np.concatenate([self._context, chunk])[np.newaxis, :]
        probs, self._h, self._c = self._model.session.run(None, {"input": batch, "h": self._h, "c": self._c})
        self._context = chunk[-SileroVad.CONTEXT :]
        return float(np.asarray(probs).ravel()[0])


class WebRtcVad:
    """Google's WebRTC VAD (webrtcvad-wheels): very cheap, native 8 kHz, less robust to noise than Silero."""

    def __init__(self, aggressiveness: int = 3) -> None:
        if aggressiveness not in range(4):
            raise ValueError("aggressiveness is 0..3")
        self.aggressiveness = aggressiveness

    def classifier(self, sample_rate: int) -> WebRtcClassifier:
        """A fresh per-call webrtcvad.Vad."""
        _check_rate(sample_rate)
        return WebRtcClassifier(self.aggressiveness, sample_rate)


class WebRtcClassifier:
    """Per-call WebRTC VAD over 20 ms frames."""

    def __init__(self, aggressiveness: int, sample_rate: int) -> None:
        import webrtcvad

        self._vad: Any = webrtcvad.Vad(aggressiveness)
        self._sample_rate = sample_rate
        self.probability = 0.0

    def is_speech(self, pcm16: bytes) -> bool:
        """WebRTC VAD only takes 10, 20 or 30 ms frames; it gives no score and mistakes noise bursts for speech,
        so its speech frames are never sure (0.4): a barge-in then waits for the turn's onset."""
        speech = bool(self._vad.is_speech(pcm16, self._sample_rate))
        self.probability = 0.4 if speech else 0.0
        return speech
