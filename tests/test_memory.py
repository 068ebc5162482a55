"""Freed memory goes back to the system: `voice_gateway.memory.release_freed_memory` (glibc's malloc_trim)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import psutil
import pytest

from voice_gateway import memory

MB = 2**20


def _freed_in_a_thread() -> list[bytes]:
    """200 MB of 64 KB blocks (below glibc's mmap threshold: from a heap) made and freed in a worker thread,
    with a small block kept after each so that the heap cannot simply shrink from its top."""
    kept: list[bytes] = []

    def work() -> None:
        blocks = []
        for _ in range(3200):
            blocks.append(bytes(bytearray(64 * 1024)))
            kept.append(bytes(bytearray(1024)))  # over 512 bytes: from malloc, not Python's own pools
        del blocks

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    return kept


def test_memory_freed_by_a_thread_goes_back_to_the_system(monkeypatch: pytest.MonkeyPatch) -> None:
    """On glibc (Debian, the machines callpilot runs on): the process's trimmer has malloc_trim to call."""
    assert memory._glibc_trim() is not None
    monkeypatch.setattr(memory, "TRIM_EVERY_S", 0.0)
    process = psutil.Process()
    kept = _freed_in_a_thread()
    freed = process.memory_info().rss
    memory.release_freed_memory()
    trimmed = process.memory_info().rss
    assert len(kept) == 3200
    assert freed - trimmed > 100 * MB, (freed / MB, trimmed / MB)


def test_trims_are_spaced_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """A busy server synthesises many sentences a second: one trim per `TRIM_EVERY_S` is enough."""
    calls: list[int] = []
    trimmer = memory._Trimmer(lambda pad: calls.append(pad) or 1)
    monkeypatch.setattr(memory, "TRIM_EVERY_S", 60.0)
    for _ in range(5):
        trimmer()
    assert (trimmer.trims, calls) == (1, [0])
    monkeypatch.setattr(memory, "TRIM_EVERY_S", 0.0)
    trimmer()
    assert (trimmer.trims, calls) == (2, [0, 0])


def test_without_malloc_trim_it_does_nothing() -> None:
    """Elsewhere than glibc (macOS, musl) there is nothing to call: no error, no trim counted."""
    trimmer = memory._Trimmer(None)
    trimmer()
    assert trimmer.trims == 0


# A child process: optionally caps its arenas, then 12 threads each allocate at once (each thread that mallocs
# while no arena is free takes a new one), and glibc's malloc_stats (on stderr) lists the arenas; the child
# also starts a grandchild that reports the MALLOC_ARENA_MAX it inherited.
_ARENAS_PROBE = """
import ctypes, subprocess, sys, threading
from voice_gateway import memory
cap = int(sys.argv[1])
memory.limit_arenas(cap)
barrier = threading.Barrier(12)
def work():
    barrier.wait()
    blocks = [bytes(bytearray(4096)) for _ in range(200)]
    barrier.wait()
threads = [threading.Thread(target=work) for _ in range(12)]
for thread in threads: thread.start()
for thread in threads: thread.join()
inherited = subprocess.run([sys.executable, "-c", "import os; print(os.environ.get('MALLOC_ARENA_MAX'))"],
                           capture_output=True, text=True, check=True).stdout.strip()
print(inherited, flush=True)
ctypes.CDLL(None).malloc_stats()
"""


def _arenas(cap: int, operators: str | None = None) -> tuple[int, str]:
    """(arenas the probe's threads used, what its own child found in MALLOC_ARENA_MAX); `operators`: the
    MALLOC_ARENA_MAX the probe starts with."""
    env = {key: value for key, value in os.environ.items() if key != "MALLOC_ARENA_MAX"}
    if operators is not None:
        env["MALLOC_ARENA_MAX"] = operators
    done = subprocess.run([sys.executable, "-c", _ARENAS_PROBE, str(cap)], capture_output=True, text=True,
                          check=True, env=env, cwd=Path(__file__).resolve().parents[1])
    return done.stderr.count("Arena "), done.stdout.strip()


def test_the_arena_cap_holds_for_the_process_and_the_processes_it_starts() -> None:
    """Without a cap, twelve threads allocating at once spread over many arenas; with `limit_arenas(2)` they
    share two, and a process started afterwards inherits the cap (the ASR workers)."""
    many, inherited = _arenas(0)
    assert many > 4 and inherited == "None", (many, inherited)
    assert _arenas(2) == (2, "2")


def test_an_operators_malloc_arena_max_wins_over_the_setting() -> None:
    assert _arenas(2, operators="3") == (3, "3")


def test_a_negative_arena_count_is_refused() -> None:
    with pytest.raises(ValueError, match="arenas must be 0"):
        memory.limit_arenas(-1)
