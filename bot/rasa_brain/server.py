"""Train and run a Rasa 3.6 server from an exported project (for tests and `make rasa`)."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from bot.rasa_brain.project import fingerprint

MODEL_NAME = "callpilot"
REQUIREMENTS = Path(__file__).with_name("requirements-rasa.txt")
CONSTRAINTS = Path(__file__).with_name("constraints-rasa.txt")
QUIET_ENV = {
    "RASA_TELEMETRY_ENABLED": "false",
    "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "PYTHONWARNINGS": "ignore",
}


class RasaServerError(Exception):
    """Training or starting the Rasa server failed; the message ends with the log's tail."""


def find_python310(environ: Mapping[str, str] | None = None) -> Path | None:
    """Python 3.10 from `$PYTHON310`, else pyenv's newest 3.10.x, else `python3.10` on PATH."""
    env = os.environ if environ is None else environ
    if env.get("PYTHON310"):
        explicit = Path(env["PYTHON310"])
        return explicit if explicit.is_file() else None
    pyenv_root = Path(env.get("PYENV_ROOT") or Path.home() / ".pyenv")
    candidates = sorted(
        (pyenv_root / "versions").glob("3.10.*/bin/python"),
        key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.parent.name)],
    )
    if candidates:
        return candidates[-1]
    for directory in env.get("PATH", "").split(os.pathsep):
        found = Path(directory) / "python3.10"
        if directory and found.is_file():
            return found
    return None


def _pins() -> str:
    """The pinned Rasa requirements (a change of versions means retraining)."""
    return "".join(p.read_text() for p in (REQUIREMENTS, CONSTRAINTS) if p.is_file())


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class RasaServer:
    """One `rasa run --enable-api` process serving the model trained from `project_dir`."""

    def __init__(self, project_dir: Path, venv: Path, port: int = 5005, *, host: str = "127.0.0.1") -> None:
        self.project_dir = project_dir.resolve()
        self.venv = venv.resolve()
        self.port = port
        self.host = host
        self.model_path = self.project_dir / "models" / f"{MODEL_NAME}.tar.gz"
        self.stamp_path = self.project_dir / "models" / f"{MODEL_NAME}.fingerprint"
        self.log_path = self.project_dir / "logs" / f"rasa-run-{port}.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of the server's HTTP API."""
        return f"http://{self.host}:{self.port}"

    @property
    def rasa(self) -> Path:
        """The `rasa` executable of the venv."""
        return self.venv / "bin" / "rasa"

    def _env(self) -> dict[str, str]:
        return {**os.environ, **QUIET_ENV}

    def data_fingerprint(self) -> str:
        """Fingerprint of config, domain, data and the pinned Rasa requirements."""
        inputs = [self.project_dir / "config.yml", self.project_dir / "domain.yml"]
        inputs += sorted((self.project_dir / "data").rglob("*"))
        files = {p.relative_to(self.project_dir).as_posix(): p.read_bytes() for p in inputs if p.is_file()}
        return fingerprint(files, salt=_pins())

    def is_trained(self) -> bool:
        """Whether the model on disk was trained from the current files."""
        if not (self.model_path.is_file() and self.stamp_path.is_file()):
            return False
        return self.stamp_path.read_text().strip() == self.data_fingerprint()

    def ensure_trained(self) -> bool:
        """Train unless the model matches the data; returns whether it trained now."""
        if self.is_trained():
            return False
        if not self.rasa.is_file():
            raise RasaServerError(f"no rasa executable at {self.rasa}: run `make rasa-venv`")
        log = self.project_dir / "logs" / "rasa-train.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        wanted = self.data_fingerprint()
        command = [
            str(self.rasa), "train", "--config", "config.yml", "--domain", "domain.yml",
            "--data", "data", "--out", "models", "--fixed-model-name", MODEL_NAME,
        ]  # fmt: skip
        with log.open("wb") as out:
            done = subprocess.run(command, cwd=self.project_dir, env=self._env(), stdout=out, stderr=out, check=False)
        if done.returncode != 0 or not self.model_path.is_file():
            raise RasaServerError(f"rasa train failed ({done.returncode}); see {log}:\n{_tail(log)}")
        self.stamp_path.write_text(wanted + "\n")
        return True

    def start(self) -> None:
        """Start `rasa run` in its own process group (does not wait for it)."""
        if self.is_running():
            return
        if not self.model_path.is_file():
            raise RasaServerError(f"no trained model at {self.model_path}")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        command = [
            str(self.rasa), "run", "--enable-api", "--interface", self.host,
            "--port", str(self.port), "--model", str(self.model_path),
            "--endpoints", "endpoints.yml", "--credentials", "credentials.yml",
        ]  # fmt: skip
        with self.log_path.open("wb") as out:
            self._process = subprocess.Popen(
                command,
                cwd=self.project_dir,
                env=self._env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def is_running(self) -> bool:
        """Whether the `rasa run` process is alive."""
        return self._process is not None and self._process.poll() is None

    def wait_ready(self, timeout: float = 180.0) -> None:
        """Block until `/status` reports a loaded model; raise if the process dies or times out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.is_running():
                raise RasaServerError(f"rasa run exited; see {self.log_path}:\n{_tail(self.log_path)}")
            try:
                with urllib.request.urlopen(f"{self.url}/status", timeout=2) as response:
                    if json.loads(response.read()).get("model_file"):
                        return
            except (OSError, ValueError):
                pass
            time.sleep(0.5)
        raise RasaServerError(f"rasa run not ready after {timeout:.0f}s:\n{_tail(self.log_path)}")

    def stop(self, grace: float = 10.0) -> None:
        """Stop the server's process group: SIGTERM, then SIGKILL after `grace` seconds."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def __enter__(self) -> RasaServer:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """`python -m bot.rasa_brain.server {python310|train|run} ...`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["python310", "train", "run"])
    parser.add_argument("project_dir", type=Path, nargs="?", default=Path("build/rasa_project"))
    parser.add_argument("--venv", type=Path, default=Path(".rasa-venv"))
    parser.add_argument("--port", type=int, default=5005)
    args = parser.parse_args(argv)
    if args.command == "python310":
        found = find_python310()
        print(found or "", end="\n" if found else "")
        return 0 if found else 1
    server = RasaServer(args.project_dir, args.venv, args.port)
    # `kill` should stop the Rasa process group too, as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
    try:
        started = time.monotonic()
        trained = server.ensure_trained()
        verb = "trained" if trained else "up to date"
        print(f"rasa model {verb}: {server.model_path} ({time.monotonic() - started:.0f}s)", flush=True)
        if args.command == "run":
            with server:
                print(f"rasa serving on {server.url} (log: {server.log_path}); Ctrl-C stops it", flush=True)
                while server.is_running():
                    time.sleep(1)
                print(f"rasa run exited; see {server.log_path}", file=sys.stderr)
                return 1
    except RasaServerError as exc:
        print(exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
