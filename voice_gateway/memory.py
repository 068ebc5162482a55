"""Giving freed memory back to the system after large, short-lived allocations (a sentence's TTS tensors).

glibc keeps what a thread frees in that thread's heap (an arena) for the next allocation, so a process whose
threads once held a few large tensors at the same time stays at that peak: freed, but never returned.
`malloc_trim(0)` returns the free pages of every arena. It takes about a millisecond, so it runs at most once
per `TRIM_EVERY_S` per process; elsewhere than glibc (macOS, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import time
from collections.abc import Callable

TRIM_EVERY_S = 0.5


def _glibc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


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
