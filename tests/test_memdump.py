"""`kill -USR2` on a server logs what its memory holds and what grew since the last dump: the tool for a soak
whose server RSS keeps growing (which objects, which source lines, or neither: native memory)."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import tracemalloc

import pytest

from callpilot.memdump import MemoryReport, install_memory_dump


class Kept:
    """What a leak would keep: one per call, never let go."""


def _five_mb() -> list[bytearray]:
    return [bytearray(10_000) for _ in range(500)]


def _growth(report: str, name: str) -> int:
    found = re.search(rf"^  \+(\d+) {name} \(now \d+\)$", report, re.MULTILINE)
    return int(found.group(1)) if found else 0


def test_a_report_names_the_types_that_grew_since_the_last_one() -> None:
    report = MemoryReport()
    first = report()
    assert first.startswith("rss ") and "most objects by type:" in first
    assert "tracemalloc is off (start the process with PYTHONTRACEMALLOC=1)" in first
    kept = [Kept() for _ in range(5000)]
    second = report()
    assert "growth by type since the last dump:" in second
    assert 5000 <= _growth(second, "Kept") < 5100, second
    assert _growth(report(), "Kept") == 0  # each report against the previous one
    assert len(kept) == 5000


def test_with_tracemalloc_it_names_the_lines_whose_allocations_grew() -> None:
    tracemalloc.start()
    try:
        report = MemoryReport()
        assert "allocation sites, largest:" in report()
        kept = _five_mb()
        second = report()
    finally:
        tracemalloc.stop()
    grown = second.split("allocation sites, most grown since the last dump:\n")[1].splitlines()
    assert f"test_memdump.py:{_five_mb.__code__.co_firstlineno + 1}: size=4" in grown[0], second  # 4.8 MiB
    assert len(kept) == 500


def test_sigusr2_logs_the_report(caplog: pytest.LogCaptureFixture) -> None:
    async def go() -> bool:
        installed = install_memory_dump()
        os.kill(os.getpid(), signal.SIGUSR2)
        await asyncio.sleep(0.05)
        os.kill(os.getpid(), signal.SIGUSR2)
        await asyncio.sleep(0.05)
        asyncio.get_running_loop().remove_signal_handler(signal.SIGUSR2)
        return installed

    with caplog.at_level(logging.WARNING, logger="callpilot.memory"):
        assert asyncio.run(go())
    dumps = [r.getMessage() for r in caplog.records if r.name == "callpilot.memory"]
    assert len(dumps) == 2 and all(d.startswith("memory dump (SIGUSR2):\nrss ") for d in dumps)
    assert "most objects by type:" in dumps[0] and "growth by type since the last dump:" in dumps[1]
