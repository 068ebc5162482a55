"""`kill -USR2 <pid>` makes a running server log what its memory holds and what grew since the last dump: the
tool for a process whose RSS keeps growing (is it Python objects, and which, or native memory?).

Each dump logs the RSS, the Python objects the garbage collector tracks counted by type (containers and class
instances; not str, bytes or numbers) with the growth of each type since the previous dump, and - when the
process runs with `PYTHONTRACEMALLOC=1` (tracemalloc costs CPU, so it is off unless asked for) - the source lines
whose allocations grew most since the previous dump. RSS growing while neither does points at native memory
(onnxruntime, CTranslate2, the C heap's fragmentation).

A dump runs on the event loop and holds it while it counts: about 50 ms for the ~220,000 objects of a started
server (measured), more with tracemalloc's snapshot - a tool for an operator's occasional look, not a metric.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import logging
import signal
import tracemalloc

import psutil

from callpilot.taskdump import log_on_signal

log = logging.getLogger("callpilot.memory")
TOP = 20


class MemoryReport:
    """Successive reports of one process, each against the previous one."""

    def __init__(self) -> None:
        self._types: collections.Counter[str] | None = None
        self._snapshot: tracemalloc.Snapshot | None = None

    def __call__(self) -> str:
        rss = psutil.Process().memory_info().rss
        types = collections.Counter(type(obj).__qualname__ for obj in gc.get_objects())
        lines = [f"rss {rss / 2**20:.0f} MB; {sum(types.values())} objects tracked by the garbage collector"]
        if self._types is None:
            lines.append("most objects by type:")
            lines += [f"  {n} {name}" for name, n in types.most_common(TOP)]
        else:
            grown = types.copy()
            grown.subtract(self._types)
            lines.append("growth by type since the last dump:")
            lines += [f"  {n:+d} {name} (now {types[name]})" for name, n in grown.most_common(TOP) if n > 0]
        self._types = types
        lines += self._allocations()
        return "\n".join(lines)

    def _allocations(self) -> list[str]:
        if not tracemalloc.is_tracing():
            return ["allocation sites: tracemalloc is off (start the process with PYTHONTRACEMALLOC=1)"]
        snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
        if self._snapshot is None:
            stats = snapshot.statistics("lineno")[:TOP]
            lines = ["allocation sites, largest:"] + [f"  {s}" for s in stats]
        else:
            diffs = snapshot.compare_to(self._snapshot, "lineno")[:TOP]
            lines = ["allocation sites, most grown since the last dump:"] + [f"  {d}" for d in diffs]
        self._snapshot = snapshot
        return lines


def install_memory_dump(loop: asyncio.AbstractEventLoop | None = None) -> bool:
    """Log a `MemoryReport` on each SIGUSR2 (each against the previous one)."""
    return log_on_signal(signal.SIGUSR2, log, "memory dump", MemoryReport(), loop)
