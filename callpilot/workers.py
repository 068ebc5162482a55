"""`callpilot run --workers N`: N server processes on one port, so a machine's cores all take calls.

One server process runs every call's audio, VAD and dialogue on one event loop; on the voice benchmark it used
about one core at 40 calls and fell behind while the second core idled. With `workers: N` the command becomes a
small supervisor: it upgrades the records database and makes sure a trained model exists (once, so the workers
do not race), then starts N ordinary `callpilot run` processes (`CALLPILOT_WORKER_INDEX` = 0..N-1), each
listening on the same HTTP and AudioSocket ports with SO_REUSEPORT - the kernel spreads new connections over
them - and sharing the floor through Redis like processes on several machines (queues, agents, sessions,
leader). SIP, whose dialogs and registrations live in one process, runs in worker 0 only. A worker that dies is
started again (after 1 s, up to 30 s if it keeps dying at once); SIGTERM or SIGINT is passed on to every
worker, which drains its calls, and the supervisor exits when they have.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from callpilot.settings import Settings

log = logging.getLogger("callpilot.workers")
WORKER_ENV = "CALLPILOT_WORKER_INDEX"
RESTART_DELAYS_S = (1.0, 2.0, 5.0, 10.0, 30.0)
QUICK_DEATH_S = 30.0  # a worker that dies sooner than this after starting backs off further


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket other processes may bind too (SO_REUSEPORT): the kernel balances connections."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve_as_worker(app: Any, settings: Settings) -> None:
    """Run `app` in this worker process on the shared port."""
    import uvicorn

    sock = reuse_port_socket(settings.host, settings.port)
    config = uvicorn.Config(app, log_level=settings.log_level, lifespan="on", ws_per_message_deflate=False)  # as `run`
    uvicorn.Server(config).run(sockets=[sock])


def worker_env(settings: Settings, index: int, overrides: dict[str, object], shared_secret: str) -> dict[str, str]:
    """A worker's environment: the supervisor's, the command line's settings, its index, the shared secrets."""
    env = dict(os.environ)
    env.update({f"CALLPILOT_{name.upper()}": str(value) for name, value in overrides.items() if value is not None})
    env[WORKER_ENV] = str(index)
    if index > 0:
        env["CALLPILOT_SIP_PORT"] = "0"  # SIP dialogs and registrations live in worker 0
    if not settings.verification_secret:
        env["CALLPILOT_VERIFICATION_SECRET"] = shared_secret  # one seal for every worker
    return env


def _stop_with_parent() -> None:
    """In the forked worker before exec: SIGTERM when the supervisor dies (Linux's PR_SET_PDEATHSIG)."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


class Supervisor:
    """Starts the workers, restarts one that dies, passes SIGTERM / SIGINT on and waits for them."""

    def __init__(self, settings: Settings, config: Path | None, overrides: dict[str, object]) -> None:
        self.settings, self.config, self.overrides = settings, config, overrides
        self.secret = secrets.token_urlsafe(32)
        self.workers: dict[int, subprocess.Popen[bytes]] = {}
        self.started: dict[int, float] = {}
        self.deaths: dict[int, int] = {}
        self.stopping = False

    def _command(self) -> list[str]:
        return [sys.executable, "-m", "callpilot", "run", *(["--config", str(self.config)] if self.config else [])]

    def _start(self, index: int) -> None:
        env = worker_env(self.settings, index, self.overrides, self.secret)
        # Its own session: a Ctrl-C in the terminal reaches the supervisor once, not every worker twice (a second
        # SIGINT makes uvicorn skip the drain); and it is stopped if the supervisor itself dies.
        self.workers[index] = subprocess.Popen(self._command(), env=env, start_new_session=True,
                                               preexec_fn=_stop_with_parent)
        self.started[index] = time.monotonic()
        log.info("worker %d started (pid %d)", index, self.workers[index].pid)

    def _signal(self, signum: int, _frame: FrameType | None) -> None:
        self.stopping = True
        for process in self.workers.values():
            if process.poll() is None:
                process.send_signal(signum)

    def run(self) -> int:
        logging.basicConfig(level=logging.INFO, format="callpilot supervisor: %(message)s")
        signal.signal(signal.SIGTERM, self._signal)
        signal.signal(signal.SIGINT, self._signal)
        for index in range(self.settings.workers):
            self._start(index)
        restart_at: dict[int, float] = {}
        while not self.stopping:
            time.sleep(0.2)
            for index, process in list(self.workers.items()):
                if process.poll() is None or self.stopping:
                    continue
                if index not in restart_at:
                    quick = time.monotonic() - self.started[index] < QUICK_DEATH_S
                    self.deaths[index] = self.deaths.get(index, 0) + 1 if quick else 1
                    delay = RESTART_DELAYS_S[min(self.deaths[index], len(RESTART_DELAYS_S)) - 1]
                    log.error("worker %d (pid %d) exited with %s; starting it again in %.0f s", index, process.pid,
                              process.returncode, delay)
                    restart_at[index] = time.monotonic() + delay
                elif time.monotonic() >= restart_at[index]:
                    del restart_at[index]
                    self._start(index)
        return self._wait_for_workers()

    def _wait_for_workers(self) -> int:
        deadline = time.monotonic() + self.settings.shutdown_drain_s + 15.0
        for process in self.workers.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("worker pid %d did not stop in time: killed", process.pid)
                process.kill()
                process.wait()
        return 0
