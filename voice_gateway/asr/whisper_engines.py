"""The Whisper engines as the gateway builds them: tiny.en (the offline default) and base multilingual, each
decoded in this process or in worker processes (`process_pool`). Apart from `whisper_engine` so that the pool,
which runs `whisper_engine`'s transcriber in its workers, and the engines that use the pool import in one
direction only."""

from __future__ import annotations

from voice_gateway.asr.process_pool import ProcessTranscriber
from voice_gateway.asr.segmented import SegmentedEngine, SegmentTimings, Transcriber
from voice_gateway.asr.short_window import WindowPolicy
from voice_gateway.asr.whisper_engine import (
    WHISPER_BASE,
    WhisperOptions,
    WhisperTranscriber,
    base_part_dirs,
    join_split_model,
    tiny_en_dir,
)


def tiny_en_engine(
    options: WhisperOptions | None = None, timings: SegmentTimings | None = None, *, processes: int = 0
) -> SegmentedEngine:
    """The offline default: Whisper tiny.en, VAD-segmented with speculative decoding; in `processes` worker
    processes when > 0 (`process_pool`), else in this process."""
    options = options or WhisperOptions(window=WindowPolicy())
    if processes > 0:
        transcriber: Transcriber = ProcessTranscriber(tiny_en_dir(), options, processes=processes)
    else:
        transcriber = WhisperTranscriber.from_dir(tiny_en_dir(), options)
    return SegmentedEngine("whisper-tiny.en", transcriber, timings)


def base_engine(
    options: WhisperOptions | None = None, timings: SegmentTimings | None = None, *, processes: int = 0
) -> SegmentedEngine:
    """Whisper base multilingual (``options.language`` "zh", or ``options.languages`` ("zh", "en") to pick per
    utterance), joined from its two packages; in `processes` worker processes when > 0."""
    if processes > 0:
        transcriber: Transcriber = ProcessTranscriber(WHISPER_BASE, options or WhisperOptions(), processes=processes)
    else:
        files = join_split_model(base_part_dirs())
        transcriber = WhisperTranscriber.from_files(WHISPER_BASE, files, options)
    return SegmentedEngine(WHISPER_BASE, transcriber, timings)
