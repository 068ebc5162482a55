"""Giving freed memory back to the system after large, short-lived allocations (a sentence's TTS tensors).

glibc keeps what a thread frees in that thread's heap (an arena) for the next allocation, so a process whose
threads once held a few large tensors at the same time stays at that peak: freed, but never returned.
`malloc_trim(0)` returns the free pages of every arena. It takes about a millisecond, so it runs at most once
per `TRIM_EVERY_S` per process; elsewhere than glibc (macOS, musl) it does nothing.

glibc also gives each thread that allocates while another holds the lock an arena of its own, up to eight per
core: the server's voice threads made 17-18 of them (120-218 MB that swung with load in a 30-minute soak).
`limit_arenas` caps them, for this process (`mallopt`, before its threads start) and the ones it starts
(`MALLOC_ARENA_MAX`, which glibc reads at a process's start).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
import time
from collections.abc import Callable

TRIM_EVERY_S = 0.5


M_ARENA_MAX = -8  # glibc's malloc.h


def _glibc(function: str) -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return getattr(ctypes.CDLL(name), function)  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # not glibc
        return None


def _glibc_trim() -> Callable[[int], int] | None:
    trim = _glibc("malloc_trim")
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


def limit_arenas(arenas: int) -> bool:
    """At most `arenas` malloc arenas in this process and in the processes it starts from now on (0: glibc's own
    limit, eight per core). Call it before the process starts its threads: glibc fixes its limit once the
    ninth arena is needed. True when this process's limit was set here (glibc); an `MALLOC_ARENA_MAX` already in
    the environment is the operator's (or a parent's): glibc applied it at this process's start, and it stands
    for this process and its children alike."""
    if arenas < 0:
        raise ValueError(f"arenas must be 0 (glibc's default) or more, got {arenas}")
    if arenas == 0 or "MALLOC_ARENA_MAX" in os.environ:
        return False
    os.environ["MALLOC_ARENA_MAX"] = str(arenas)
    mallopt = _glibc("mallopt")
    if mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, arenas))


class _Trimmer:
    """Calls `trim` (glibc's `malloc_trim`; None: nothing to call) at most once per `TRIM_EVERY_S`."""

    def __init__(self, trim: Callable[[int], int] | None) -> None:
        self._trim = trim
        self._lock = threading.Lock()
        self._last = float("-inf")
        self.trims = 0

    def __call__(self) -> None:
        if self._trim is None:
            return
        now = time.monotonic()
        with self._lock:
            if now - self._last < TRIM_EVERY_S:
                return
            self._last = now
            self.trims += 1
        self._trim(0)  # outside the lock: a trim takes about a millisecond


release_freed_memory = _Trimmer(_glibc_trim())
