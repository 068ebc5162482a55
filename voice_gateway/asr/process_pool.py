"""Whisper in worker processes: decodes never wait for the web server's GIL.

faster-whisper needs the GIL between its native steps; in the server process the event loop holds it most of
the time (every call's frames), and a decode measured twice as slow next to one busy Python thread - several
times slower under 10 calls. Each worker process loads the model once and decodes one utterance at a time;
the audio (a few hundred KB of float32) is the only thing that crosses.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np

from voice_gateway.asr.audio import Samples
from voice_gateway.asr.segmented import Transcriber, Transcript
from voice_gateway.asr.whisper_engine import (
    WHISPER_BASE,
    WhisperOptions,
    WhisperTranscriber,
    base_part_dirs,
    join_split_model,
)
from voice_gateway.memory import release_freed_memory

PARENT_CHECK_S = 1.0
log = logging.getLogger(__name__)


class _Worker:
    """The model of one worker process (set by the pool's initializer; a process holds exactly one)."""

    transcriber: Transcriber | None = None


def _exit_with(parent: int) -> None:
    """A worker outlives nothing: when the server process is gone (killed, crashed), it exits too."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_S)
    os._exit(0)


def _load(model: str, options: WhisperOptions) -> None:
    threading.Thread(target=_exit_with, args=(os.getppid(),), daemon=True, name="parent-watch").start()
    if model == WHISPER_BASE:  # multilingual base, joined from its two packages in the worker
        _Worker.transcriber = WhisperTranscriber.from_files(model, join_split_model(base_part_dirs()), options)
    else:
        _Worker.transcriber = WhisperTranscriber.from_dir(Path(model), options)


def _transcribe(samples: Samples) -> Transcript:
    assert _Worker.transcriber is not None, "the worker's initializer did not run"
    try:
        return _Worker.transcriber.transcribe(samples)
    finally:
        # Each utterance's length sizes the decode's buffers: without a trim a worker keeps the heap of its
        # longest utterances (a probe: 226 -> 266 MB over 96 decodes, 238 MB with it; the soak's workers 5-11 %).
        release_freed_memory()


class ProcessTranscriber:
    """A `Transcriber` backed by `processes` worker processes, each with its own copy of the model.

    A worker that dies (killed, out of memory) breaks the whole `ProcessPoolExecutor`: the pool is then rebuilt
    once per failure and the decode retried, so one crash costs one utterance's delay, not every later call
    (`rebuilds` counts them, for `/health/voice`). If the new pool fails too, the error reaches the call, which
    goes on in the keypad menu.
    """

    def __init__(self, model_dir: Path | str, options: WhisperOptions, *, processes: int = 2) -> None:
        """`model_dir`: a CTranslate2 Whisper folder, or `WHISPER_BASE` (the packaged multilingual base)."""
        if processes < 1:
            raise ValueError(f"processes must be at least 1, got {processes}")
        self.processes = processes
        self._model_dir, self._options = model_dir, options
        self._lock = threading.Lock()
        self.rebuilds = 0
        self._closed = False
        self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        pool = ProcessPoolExecutor(
            self.processes,
            mp_context=multiprocessing.get_context("spawn"),  # no fork of a server full of threads
            initializer=_load,
            initargs=(str(self._model_dir), self._options),
        )
        # Load every worker's model now (seconds), not during the first calls.
        silence = np.zeros(1600, dtype=np.float32)
        for future in [pool.submit(_transcribe, silence) for _ in range(self.processes)]:
            future.result()
        return pool

    def transcribe(self, samples: Samples) -> Transcript:
        """Decode in a worker; blocks the calling thread (an ASR thread of the pipeline) until done."""
        pool = self._pool
        try:
            return pool.submit(_transcribe, samples).result()
        except BrokenProcessPool:
            return self._rebuilt(pool).submit(_transcribe, samples).result()

    def _rebuilt(self, broken: ProcessPoolExecutor) -> ProcessPoolExecutor:
        """A working pool in place of `broken` (another thread may have rebuilt it already)."""
        with self._lock:
            if self._closed:
                raise BrokenProcessPool("the ASR workers are shut down")
            if self._pool is broken:
                log.error("an ASR worker process died: starting new workers")
                broken.shutdown(wait=False, cancel_futures=True)
                self._pool = self._start()
                self.rebuilds += 1
            return self._pool

    def close(self) -> None:
        """Stop the workers and wait for them to exit (a decode in progress finishes first)."""
        with self._lock:
            self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)
