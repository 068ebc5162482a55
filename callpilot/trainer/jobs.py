"""Training jobs as seen from the server: one at a time, each a nice'd child process (`callpilot.trainer.worker`)
watched by a thread, so no request handler and no call ever waits for a training."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class JobBusy(RuntimeError):
    """A training is already running."""


@dataclass
class Job:
    id: str
    folder: Path
    started_at: float = field(default_factory=time.time)
    process: subprocess.Popen[bytes] | None = None
    ended_at: float | None = None
    returncode: int | None = None

    def status(self) -> dict[str, Any]:
        """queued | running | succeeded | failed, with progress, then the evaluation or the error."""
        out: dict[str, Any] = {"id": self.id, "started_at": self.started_at, "ended_at": self.ended_at}
        progress = _read(self.folder / "progress.json")
        result, error = _read(self.folder / "result.json"), _read(self.folder / "error.json")
        if self.ended_at is None:
            out["status"] = "running"
        elif result is not None and self.returncode == 0:
            out["status"] = "succeeded"
            out["evaluation"] = result
            out["model_id"] = result.get("model_id")
        else:
            out["status"] = "failed"
            out["error"] = (error or {}).get("error") or f"the training process ended with code {self.returncode}"
        out["progress"] = progress
        return out


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


class JobRunner:
    """Starts and watches training processes; keeps every job's status (in memory and in its folder)."""

    def __init__(self, jobs_dir: Path, *, niceness: int = 10, on_done: Any = None) -> None:
        self.jobs_dir = jobs_dir
        self.niceness = niceness
        self.on_done = on_done  # called with the job once its process ended
        self.jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def running(self) -> Job | None:
        with self._lock:
            return next((j for j in self.jobs.values() if j.ended_at is None), None)

    def start(self, spec: dict[str, Any]) -> Job:
        """A new job for `spec` (job.json); JobBusy while another runs."""
        with self._lock:
            if any(j.ended_at is None for j in self.jobs.values()):
                raise JobBusy("a training is already running: wait for it to finish")
            job = Job(f"job-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:6]}", self.jobs_dir / "")
            job.folder = self.jobs_dir / job.id
            job.folder.mkdir(parents=True)
            (job.folder / "job.json").write_text(json.dumps(spec, indent=1, default=str))
            # One thread for the training's math: the other cores stay free for live calls and chats (the
            # niceness alone does not stop a 2-thread torch from delaying every live turn on a 2-core machine)
            env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
                   "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
                   "PYTHONPATH": os.pathsep.join(p for p in (str(Path.cwd()), os.environ.get("PYTHONPATH")) if p)}
            log = (job.folder / "output.log").open("wb")
            job.process = subprocess.Popen(
                [sys.executable, "-m", "callpilot.trainer.worker", str(job.folder)],
                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                preexec_fn=lambda: os.nice(self.niceness))
            log.close()
            self.jobs[job.id] = job
        threading.Thread(target=self._watch, args=(job,), daemon=True, name=f"train-{job.id}").start()
        return job

    def _watch(self, job: Job) -> None:
        assert job.process is not None
        job.returncode = job.process.wait()
        job.ended_at = time.time()
        if self.on_done is not None:
            self.on_done(job)

    def get(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id)

    def stop_all(self) -> None:
        for job in list(self.jobs.values()):
            if job.ended_at is None and job.process is not None:
                job.process.kill()
                job.process.wait(timeout=10)
