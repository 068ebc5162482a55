"""`kill -USR1` on a server logs every asyncio task and where it waits: the tool for a call that seems stuck
with no error logged (a soak's callers left on hold after their agent hung up)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator

import pytest

from callpilot.taskdump import install_task_dump, task_report


async def _feed() -> AsyncIterator[int]:
    while True:
        await asyncio.sleep(30)
        yield 1


async def _follow() -> None:
    async for _ in _feed():
        pass


async def _handler(done: asyncio.Event) -> None:
    await asyncio.wait_for(done.wait(), 30)


def test_the_report_names_each_task_where_it_waits_and_each_generator() -> None:
    async def go() -> str:
        done = asyncio.Event()
        tasks = [asyncio.create_task(_follow(), name="leg-CA1"), asyncio.create_task(_handler(done), name="h")]
        await asyncio.sleep(0.01)
        report = task_report()
        for task in tasks:
            task.cancel()
        return report

    report = asyncio.run(go())
    lines = report.splitlines()
    assert lines[0].endswith(" asyncio tasks") and int(lines[0].split()[0]) >= 3  # (wait_for adds one)
    assert any(line.startswith("leg-CA1: _follow (test_taskdump.py:") for line in lines), report
    handler = next(line for line in lines if line.startswith("h: "))
    assert "_handler (test_taskdump.py:" in handler and "-> wait_for (tasks.py:" in handler
    assert any("x _feed (test_taskdump.py:" in line and "sleep (tasks.py" in line for line in lines), report


def test_sigusr1_logs_the_report(caplog: pytest.LogCaptureFixture) -> None:
    async def go() -> bool:
        installed = install_task_dump()
        task = asyncio.create_task(_follow(), name="leg-CA2")
        await asyncio.sleep(0.01)
        os.kill(os.getpid(), signal.SIGUSR1)
        await asyncio.sleep(0.05)
        task.cancel()
        asyncio.get_running_loop().remove_signal_handler(signal.SIGUSR1)
        return installed

    with caplog.at_level(logging.WARNING, logger="callpilot.tasks"):
        assert asyncio.run(go())
    dumps = [r.getMessage() for r in caplog.records if r.name == "callpilot.tasks"]
    assert len(dumps) == 1 and "task dump (SIGUSR1)" in dumps[0] and "leg-CA2: _follow" in dumps[0]
