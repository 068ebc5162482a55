"""Which recogniser to load, from typed settings with an injectable environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from voice_gateway.asr.results import AsrEngine
from voice_gateway.asr.short_window import WindowPolicy
from voice_gateway.asr.whisper_engine import WhisperOptions

ENGINES = ("whisper-tiny.en", "moonshine", "whisper-base", "vosk")
DEFAULT_ENGINE = "whisper-tiny.en"


@dataclass(frozen=True)
class AsrSettings:
    """ASR configuration; ``CALLPILOT_ASR_*`` environment variables."""

    engine: str = DEFAULT_ENGINE
    # Models
    vosk_model_dir: Path | None = None
    language: str | None = None
    languages: tuple[str, ...] = ("en",)  # the line's: a multilingual model picks one of them per utterance
    # Compute
    cpu_threads: int = 1
    num_workers: int = 2
    processes: int = 0  # whisper-tiny.en / whisper-base in this many worker processes (0: in this process)

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"unknown ASR engine {self.engine!r}: choose one of {', '.join(ENGINES)}")
        if self.engine == "vosk" and self.vosk_model_dir is None:
            raise ValueError("the vosk engine needs CALLPILOT_ASR_VOSK_MODEL_DIR (a downloaded vosk model folder)")
        if self.engine in ("whisper-tiny.en", "moonshine") and self.language not in (None, "en"):
            raise ValueError(f"the {self.engine} engine recognises English only, not {self.language!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> AsrSettings:
        """Read CALLPILOT_ASR_ENGINE, _VOSK_MODEL_DIR, _LANGUAGE, _CPU_THREADS, _NUM_WORKERS, _PROCESSES."""
        vosk_dir = environ.get("CALLPILOT_ASR_VOSK_MODEL_DIR")
        return cls(
            engine=environ.get("CALLPILOT_ASR_ENGINE", DEFAULT_ENGINE),
            vosk_model_dir=Path(vosk_dir) if vosk_dir else None,
            language=environ.get("CALLPILOT_ASR_LANGUAGE") or None,
            cpu_threads=int(environ.get("CALLPILOT_ASR_CPU_THREADS", "1")),
            num_workers=int(environ.get("CALLPILOT_ASR_NUM_WORKERS", "2")),
            processes=int(environ.get("CALLPILOT_ASR_PROCESSES", "0")),
        )


def load_engine(settings: AsrSettings) -> AsrEngine:
    """Load the configured engine once per process; every call then opens its own stream."""
    if settings.engine == "vosk":
        from voice_gateway.asr.vosk_engine import VoskEngine

        assert settings.vosk_model_dir is not None
        return VoskEngine(settings.vosk_model_dir)
    if settings.engine == "moonshine":
        from voice_gateway.asr.moonshine_engine import moonshine_engine

        return moonshine_engine()
    from voice_gateway.asr.whisper_engines import base_engine, tiny_en_engine

    if settings.engine == "whisper-base":
        # The short window as for tiny.en (measured for Mandarin in bench/results/asr_zh.json).
        options = WhisperOptions(
            language=settings.language, languages=settings.languages, cpu_threads=settings.cpu_threads,
            num_workers=settings.num_workers, window=WindowPolicy(),
        )
        return base_engine(options, processes=settings.processes)
    options = WhisperOptions(
        language="en", cpu_threads=settings.cpu_threads, num_workers=settings.num_workers, window=WindowPolicy()
    )
    return tiny_en_engine(options, processes=settings.processes)
