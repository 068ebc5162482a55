"""`kill -USR1 <pid>` makes a running server log every asyncio task and where it waits (its coroutine stack):
what an operator (or a soak) needs when a call seems stuck and no error was logged."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import logging
import signal
import traceback
import types
from collections.abc import Callable
from types import FrameType
from typing import Any

log = logging.getLogger("callpilot.tasks")
MAX_TASKS = 2000


def _awaits(coro: Any) -> list[FrameType]:
    """The frames of a suspended coroutine and of what it awaits, outermost first (an async generator being
    iterated hides behind its `asend` object: the chain stops there, see `_generators`)."""
    frames: list[FrameType] = []
    while coro is not None and len(frames) < 64:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            frames.append(frame)
        coro = getattr(coro, "cr_await", None) or getattr(coro, "ag_await", None) or getattr(coro, "gi_yieldfrom", None)
    return frames


def _where(frames: list[FrameType]) -> str:
    return " -> ".join(f"{f.f_code.co_name} ({f.f_code.co_filename.rsplit('/', 2)[-1]}:{f.f_lineno})"
                       for f in frames) or "(not started or done)"


def _generators() -> list[str]:
    """Where each suspended async generator (a subscription, a feed) waits, counted by place."""
    places: collections.Counter[str] = collections.Counter()
    for obj in gc.get_objects():
        if isinstance(obj, types.AsyncGeneratorType) and obj.ag_frame is not None:
            places[_where(_awaits(obj))] += 1
    return [f"{n} x {place}" for place, n in places.most_common()]


def task_report(tasks: set[asyncio.Task[Any]] | None = None) -> str:
    """Each task's name and where it waits (outermost frame first), then the async generators by place."""
    tasks = asyncio.all_tasks() if tasks is None else tasks
    lines = [f"{len(tasks)} asyncio tasks"]
    for task in sorted(tasks, key=lambda t: t.get_name())[:MAX_TASKS]:
        lines.append(f"{task.get_name()}: {_where(_awaits(task.get_coro()))}")
    lines.append("async generators:")
    lines += _generators()
    return "\n".join(lines)


def log_on_signal(sig: signal.Signals, logger: logging.Logger, title: str, report: Callable[[], str],
                  loop: asyncio.AbstractEventLoop | None = None) -> bool:
    """Log `report()` at WARNING under `title` on each `sig`; False where signals cannot be handled (not the main
    thread, not Unix)."""
    loop = loop or asyncio.get_running_loop()

    def dump() -> None:
        try:
            logger.warning("%s (%s):\n%s", title, sig.name, report())
        except Exception:
            logger.warning("%s failed:\n%s", title, traceback.format_exc())

    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(sig, dump)
        return True
    return False


def install_task_dump(loop: asyncio.AbstractEventLoop | None = None) -> bool:
    """Log `task_report()` on SIGUSR1."""
    return log_on_signal(signal.SIGUSR1, log, "task dump", task_report, loop)
