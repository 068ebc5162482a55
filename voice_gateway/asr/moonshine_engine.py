"""Moonshine base-en (ONNX, from the ``moonshine-cpp`` package) as a whole-utterance Transcriber."""

from __future__ import annotations

import ctypes
import threading
from importlib import import_module
from typing import Any

import numpy as np

from voice_gateway.asr.audio import Samples
from voice_gateway.asr.segmented import SegmentedEngine, SegmentTimings, Transcript

# Moonshine reports no score: a non-empty transcript gets this confidence.
UNSCORED_CONFIDENCE = 1.0


class MoonshineTranscriber:
    """Calls libmoonshine directly (the package's own ``transcribe`` wrapper is broken for arrays)."""

    def __init__(self) -> None:
        self._lib: Any = import_module("moonshine_cpp").moonshine_lib
        model: Any = import_module("moonshine_cpp").MoonshineModel(language="en")
        self._model = model
        self._lock = threading.Lock()

    def transcribe(self, samples: Samples) -> Transcript:
        """Decode one 16 kHz utterance (one call at a time: the library's thread safety is undocumented)."""
        audio = np.ascontiguousarray(samples, dtype=np.float32)
        if audio.size == 0:
            return Transcript("", 0.0)
        text_ptr = ctypes.c_char_p(0)
        with self._lock:
            error = self._lib.moonshine_transcribe(
                self._model.model_handle,
                audio.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
                audio.size,
                ctypes.byref(text_ptr),
            )
        if error != 0:
            raise RuntimeError(f"moonshine_transcribe failed with error {error}")
        raw = text_ptr.value or b""
        self._lib.moonshine_free_text(text_ptr)
        text = raw.decode("utf-8").strip()
        return Transcript(text, UNSCORED_CONFIDENCE if text else 0.0)


def moonshine_engine(timings: SegmentTimings | None = None) -> SegmentedEngine:
    """Moonshine base-en, VAD-segmented with speculative decoding like Whisper."""
    return SegmentedEngine("moonshine-base-en", MoonshineTranscriber(), timings)
