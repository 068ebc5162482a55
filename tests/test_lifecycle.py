"""The server's runtimes start in dependency order and stop in reverse, also when one fails to start."""

from __future__ import annotations

import asyncio
import logging

import pytest

from callpilot.lifecycle import Runtimes


class Part:
    def __init__(self, name: str, log: list[str], *, fail_start: bool = False, fail_stop: bool = False) -> None:
        self.name, self.log, self.fail_start, self.fail_stop = name, log, fail_start, fail_stop

    async def start(self) -> None:
        if self.fail_start:
            raise RuntimeError(f"{self.name} cannot start")
        self.log.append(f"start {self.name}")

    async def stop(self) -> None:
        self.log.append(f"stop {self.name}")
        if self.fail_stop:
            raise RuntimeError(f"{self.name} cannot stop")


def test_started_in_order_and_stopped_in_reverse() -> None:
    log: list[str] = []
    runtimes = Runtimes([Part("records", log), Part("handoff", log), Part("voice", log)])
    asyncio.run(runtimes.start())
    asyncio.run(runtimes.stop())
    assert log == ["start records", "start handoff", "start voice", "stop voice", "stop handoff", "stop records"]
    asyncio.run(runtimes.stop())  # a second stop stops nothing twice
    assert len(log) == 6


def test_a_failed_start_stops_what_already_runs_and_raises() -> None:
    log: list[str] = []
    runtimes = Runtimes([Part("records", log), Part("handoff", log, fail_start=True), Part("voice", log)])
    with pytest.raises(RuntimeError, match="handoff cannot start"):
        asyncio.run(runtimes.start())
    assert log == ["start records", "stop records"]


def test_one_failing_to_stop_does_not_keep_the_others_running(caplog: pytest.LogCaptureFixture) -> None:
    log: list[str] = []
    runtimes = Runtimes([Part("records", log), Part("voice", log, fail_stop=True)])
    asyncio.run(runtimes.start())
    with caplog.at_level(logging.ERROR, logger="callpilot"):
        asyncio.run(runtimes.stop())
    assert log[-2:] == ["stop voice", "stop records"]
    assert "stopping Part failed" in caplog.text
