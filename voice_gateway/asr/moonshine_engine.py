"""Moonshine base-en (ONNX, from the ``moonshine-cpp`` package) as a whole-utterance Transcriber."""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
import threading
from importlib import import_module
from typing import Any

import numpy as np

from voice_gateway.asr.audio import Samples
from voice_gateway.asr.segmented import SegmentedEngine, SegmentTimings, Transcript

# Moonshine reports no score: a non-empty transcript gets this confidence.
UNSCORED_CONFIDENCE = 1.0


# Loads the model and decodes a second of silence, as `MoonshineTranscriber` would.
_PROBE = """
import ctypes, numpy as np, moonshine_cpp
model = moonshine_cpp.MoonshineModel(language="en")
audio = np.zeros(16000, dtype=np.float32)
text = ctypes.c_char_p(0)
moonshine_cpp.moonshine_lib.moonshine_transcribe(model.model_handle, audio.ctypes.data_as(
    ctypes.POINTER(ctypes.c_float)), audio.size, ctypes.byref(text))
"""


class MoonshineUnavailable(RuntimeError):
    """libmoonshine cannot run here (a CPU without the instructions it was built for)."""


def check_runs_here(probe: str = _PROBE, timeout_s: float = 120.0) -> None:
    """Load and run the engine once in a child process first: libmoonshine kills the process that loads it on a
    CPU without the instructions it was built for ("Illegal instruction" on an AMD EPYC without AVX-512), and
    that must not be the server. Raises `MoonshineUnavailable` with what happened."""
    try:
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise MoonshineUnavailable(f"moonshine did not load within {timeout_s:.0f} s") from exc
    if done.returncode < 0:
        name = signal.Signals(-done.returncode).name
        raise MoonshineUnavailable(f"moonshine cannot run on this CPU: loading it killed a test process with {name} "
                                   "(choose asr_engine whisper-tiny.en)")
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise MoonshineUnavailable(f"moonshine did not load: {last}")


class MoonshineTranscriber:
    """Calls libmoonshine directly (the package's own ``transcribe`` wrapper is broken for arrays)."""

    def __init__(self) -> None:
        check_runs_here()
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
