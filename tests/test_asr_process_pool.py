"""Whisper tiny.en in a worker process hears what it hears in this process (same model, greedy decoding); the
workers stop with the pool, and with the server process even when it is killed."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from voice_gateway.asr.process_pool import ProcessTranscriber
from voice_gateway.asr.short_window import WindowPolicy
from voice_gateway.asr.whisper_engine import WhisperOptions, WhisperTranscriber, tiny_en_dir
from voice_gateway.audio import pcm16_to_float, resample_pcm16
from voice_gateway.tts import HibariTts

ROOT = Path(__file__).resolve().parent.parent


def test_a_worker_process_transcribes_like_this_process() -> None:
    async def render() -> bytes:
        chunks = [chunk async for chunk in HibariTts().synthesize("where is my order")]
        return resample_pcm16(b"".join(c.pcm for c in chunks), chunks[0].sample_rate, 16000)

    samples = pcm16_to_float(asyncio.run(render()))
    options = WhisperOptions(window=WindowPolicy())  # the short-window path, as the server runs it
    here = WhisperTranscriber.from_dir(tiny_en_dir(), options).transcribe(samples)
    pool = ProcessTranscriber(tiny_en_dir(), options, processes=1)
    try:
        there = pool.transcribe(samples)
    finally:
        pool.close()
    assert "order" in there.text.lower()
    assert there.text == here.text and there.confidence == pytest.approx(here.confidence, abs=1e-3)


def test_no_worker_processes_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ProcessTranscriber(tiny_en_dir(), WhisperOptions(), processes=0)


def _workers(process: psutil.Process) -> list[psutil.Process]:
    return [p for p in process.children(recursive=True) if "spawn_main" in " ".join(p.cmdline())]


def test_closing_the_pool_stops_its_workers() -> None:
    pool = ProcessTranscriber(tiny_en_dir(), WhisperOptions(), processes=1)
    workers = _workers(psutil.Process())
    assert workers
    pool.close()
    assert not [w for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]  # gone when close returns


def _trims() -> int:
    """How often this (worker) process gave freed memory back to the system."""
    from voice_gateway import memory

    return memory.release_freed_memory.trims


def test_a_worker_gives_each_decode_s_memory_back_to_the_system() -> None:
    """An utterance's length sizes the decode's buffers: a worker that kept them grew 5-11 % in the soak."""
    pool = ProcessTranscriber(tiny_en_dir(), WhisperOptions(), processes=1)
    try:
        before = pool._pool.submit(_trims).result()  # the start's warm-up decode trimmed once
        time.sleep(0.6)  # trims are at least 0.5 s apart
        pool.transcribe(np.zeros(16000, dtype=np.float32))
        assert (before, pool._pool.submit(_trims).result()) == (1, 2)
    finally:
        pool.close()


SERVER_THAT_DIES = """
import os, signal, psutil
from voice_gateway.asr.process_pool import ProcessTranscriber
from voice_gateway.asr.whisper_engine import WhisperOptions, tiny_en_dir
pool = ProcessTranscriber(tiny_en_dir(), WhisperOptions(), processes=2)
print(" ".join(str(p.pid) for p in psutil.Process().children() if "spawn_main" in " ".join(p.cmdline())), flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # no shutdown, no atexit: a crashed or killed server
"""


def test_workers_exit_when_the_server_process_is_killed() -> None:
    done = subprocess.run([sys.executable, "-c", SERVER_THAT_DIES], capture_output=True, text=True, timeout=300,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == -signal.SIGKILL, done.stderr
    workers = [psutil.Process(int(pid)) for pid in done.stdout.split() if psutil.pid_exists(int(pid))]
    assert len(done.stdout.split()) == 2, done.stdout
    _, alive = psutil.wait_procs(workers, timeout=15)  # orphans re-parented to init once their server died
    assert alive == [], [p.cmdline() for p in alive]


def test_a_killed_worker_is_replaced_and_the_next_decode_still_answers() -> None:
    """A worker killed with SIGKILL breaks a ProcessPoolExecutor for good; ours starts new workers and retries."""
    async def render() -> bytes:
        chunks = [chunk async for chunk in HibariTts().synthesize("where is my order")]
        return resample_pcm16(b"".join(c.pcm for c in chunks), chunks[0].sample_rate, 16000)

    samples = pcm16_to_float(asyncio.run(render()))
    pool = ProcessTranscriber(tiny_en_dir(), WhisperOptions(), processes=1)
    try:
        [worker] = _workers(psutil.Process())
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
        heard = pool.transcribe(samples)  # the broken pool is noticed here, rebuilt, and the decode retried
        assert "order" in heard.text.lower() and pool.rebuilds == 1
        [new_worker] = _workers(psutil.Process())
        assert new_worker.pid != worker.pid
    finally:
        pool.close()
    assert not [w for w in _workers(psutil.Process()) if w.status() != psutil.STATUS_ZOMBIE]


def test_the_pipeline_decodes_on_as_many_threads_as_there_are_worker_processes() -> None:
    """`CALLPILOT_ASR_PROCESSES=3` means three utterances decode at once, not three workers behind two threads
    (a 40-call burst waited 1.4 s per pause decode in that queue)."""
    import threading

    from voice_gateway.asr.settings import AsrSettings
    from voice_gateway.pipeline.services import load_services

    services = load_services(None, asr=AsrSettings(processes=3), tts_engine="espeak")  # type: ignore[arg-type]
    together = threading.Barrier(3)
    try:
        async def three_at_once() -> list[int]:
            return await asyncio.gather(*(services.decode(lambda: together.wait(timeout=10)) for _ in range(3)))

        assert sorted(asyncio.run(three_at_once())) == [0, 1, 2]  # all three were inside at the same time
        assert services.asr.transcriber.processes == 3  # type: ignore[attr-defined]
    finally:
        services.close()
