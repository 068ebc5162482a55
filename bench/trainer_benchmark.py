"""The trainer's workbench under live traffic: a real `callpilot run` (copies of nlu_data/ and models/ in a
temporary folder, so the repository is never touched) answers REST conversations from 4 concurrent clients
while a trainer trains a new model and activates it through `/api/v1/trainer`.

Measured per run: the training time of the demo data (English + Chinese models, in its nice'd process), the
time from `POST .../activate` to the first answer from the new model (`/health`'s model id, polled every
20 ms), and the worst and p95 turn latency of the concurrent conversations before, during training and during
the 5 s after the activation (the swap), with any errors. Three runs (median and spread), with the load average.

Usage: .venv/bin/python bench/trainer_benchmark.py [--runs 3] [--clients 4] [--out bench/results/trainer.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
SWAP_WINDOW_S = 5.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def texts() -> list[str]:
    """What the clients say: the held-out English examples (varied, never the training data's sentences)."""
    data = yaml.safe_load((ROOT / "held_out" / "nlu.yml").read_text(encoding="utf-8"))
    found: list[str] = []
    for block in data.get("nlu", []):
        for line in str(block.get("examples", "")).splitlines():
            line = line.strip().removeprefix("- ").strip()
            if line:
                found.append(re.sub(r"\[([^\]]+)\](\([^)]*\)|\{[^}]*\})", r"\1", line))  # entity markup off
    return found


class Traffic:
    """Clients sending REST turns in a loop; each turn's (start, latency, ok)."""

    def __init__(self, url: str, clients: int, sentences: list[str]) -> None:
        self.url, self.clients, self.sentences = url, clients, sentences
        self.turns: list[tuple[float, float, bool]] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for n in range(self.clients):
            thread = threading.Thread(target=self._client, args=(n,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _client(self, n: int) -> None:
        rng = random.Random(n)
        with httpx.Client(timeout=30) as client:
            conversation = 0
            while not self._stop.is_set():
                conversation += 1
                sender = f"bench-{n}-{conversation}-{os.urandom(4).hex()}"
                for _ in range(4):
                    started = time.monotonic()
                    try:
                        reply = client.post(f"{self.url}/webhooks/rest/webhook",
                                            json={"sender": sender, "message": rng.choice(self.sentences)})
                        ok = reply.status_code == 200 and bool(reply.json())
                    except httpx.HTTPError:
                        ok = False
                    self.turns.append((started, time.monotonic() - started, ok))
                    time.sleep(rng.uniform(0.1, 0.4))

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def window(self, start: float, end: float) -> dict[str, Any]:
        inside = [(lat, ok) for t, lat, ok in self.turns if start <= t < end]
        latencies = sorted(lat * 1000 for lat, _ in inside)
        if not latencies:
            return {"turns": 0}
        return {"turns": len(latencies), "errors": sum(1 for _, ok in inside if not ok),
                "p95_ms": round(latencies[int(0.95 * (len(latencies) - 1))], 1), "max_ms": round(latencies[-1], 1)}


def one_run(clients: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="trainer-bench-"))
    try:
        shutil.copytree(ROOT / "nlu_data", tmp / "nlu_data")
        shutil.copytree(ROOT / "models", tmp / "models")
        port = free_port()
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "CALLPILOT_PORT": str(port), "CALLPILOT_AUDIOSOCKET_PORT": "0",
               "CALLPILOT_DATA_DIR": str(tmp / "nlu_data"), "CALLPILOT_MODELS_DIR": str(tmp / "models"),
               "CALLPILOT_STATE_DIR": str(tmp / "state"), "CALLPILOT_CALL_LOG": str(tmp / "calls.jsonl"),
               "CALLPILOT_RESULTS_DIR": str(tmp / "results")}
        key = subprocess.run([sys.executable, "-m", "callpilot", "apikey", "create", "--role", "trainer"], env=env,
                             capture_output=True, text=True, check=True, cwd=ROOT).stdout.strip()
        log = (tmp / "server.log").open("wb")
        server = subprocess.Popen([sys.executable, "-m", "callpilot", "run", "--port", str(port)], env=env,
                                  stdout=log, stderr=log, cwd=ROOT)
        url, auth = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {key}"}
        try:
            deadline = time.monotonic() + 300
            while True:
                try:
                    if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError((tmp / "server.log").read_text(errors="replace")[-2000:])
                time.sleep(0.5)
            old_model = httpx.get(f"{url}/health").json()["model_id"]
            traffic = Traffic(url, clients, texts())
            traffic.start()
            time.sleep(10.0)  # the steady state before the trainer starts (the first seconds warm up)
            added = httpx.post(f"{url}/api/v1/trainer/data/intents/greet/examples", headers=auth, timeout=30,
                               json={"text": f"ahoy there number {os.urandom(3).hex()}"})  # a trainer's edit
            if added.status_code >= 300:
                raise RuntimeError(f"adding an example failed: {added.status_code} {added.text[:200]}")
            train_started = time.monotonic()
            job = httpx.post(f"{url}/api/v1/trainer/train", headers=auth, timeout=30).json()
            while (status := httpx.get(f"{url}/api/v1/trainer/jobs/{job['id']}", headers=auth,
                                       timeout=30).json())["status"] == "running":
                time.sleep(0.5)
            train_done = time.monotonic()
            if status["status"] != "succeeded" or status.get("model_id") == old_model:
                raise RuntimeError(f"training failed: {status.get('error')}")
            new_model = status.get("model_id") or next(
                m["model_id"] for m in httpx.get(f"{url}/api/v1/trainer/models", headers=auth).json()
                if not m.get("active"))
            time.sleep(2.0)
            activate_at = time.monotonic()
            activated = httpx.post(f"{url}/api/v1/trainer/models/{new_model}/activate", headers=auth, json={},
                                   timeout=60)
            if activated.status_code == 409:  # the conversation-test gate; the same data should pass it
                activated = httpx.post(f"{url}/api/v1/trainer/models/{new_model}/activate", headers=auth,
                                       json={"override": True}, timeout=60)
            while httpx.get(f"{url}/health", timeout=5).json().get("model_id") != new_model:
                time.sleep(0.02)
            first_answer = time.monotonic()
            time.sleep(SWAP_WINDOW_S + 1.0)
            traffic.stop()
            return {
                "training_s": round(train_done - train_started, 1),
                "activate_to_new_model_ms": round((first_answer - activate_at) * 1000, 1),
                "activate_status": activated.status_code, "old_model": old_model, "new_model": new_model,
                "before": traffic.window(train_started - 6.0, train_started),
                "during_training": traffic.window(train_started, train_done),
                "during_swap": traffic.window(activate_at, activate_at + SWAP_WINDOW_S),
            }
        finally:
            server.terminate()
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
            log.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def summary(runs: list[dict[str, Any]], path: list[str]) -> dict[str, float]:
    values = []
    for run in runs:
        value: Any = run
        for key in path:
            value = value.get(key, 0) if isinstance(value, dict) else 0
        values.append(float(value))
    return {"median": round(statistics.median(values), 1), "min": min(values), "max": max(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "trainer.json")
    args = parser.parse_args()
    runs = []
    for n in range(args.runs):
        load = os.getloadavg()[0]
        run = one_run(args.clients)
        run["load_average_before"] = round(load, 2)
        runs.append(run)
        print(f"run {n + 1}: {json.dumps(run)}", flush=True)
    result = {
        "what": "REST conversations from concurrent clients while a trainer trains and activates a model "
                "(bench/trainer_benchmark.py)",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "clients": args.clients,
        "median_of_runs": {
            "training_s": summary(runs, ["training_s"]),
            "activate_to_new_model_ms": summary(runs, ["activate_to_new_model_ms"]),
            "turn_p95_ms_before": summary(runs, ["before", "p95_ms"]),
            "turn_max_ms_during_training": summary(runs, ["during_training", "max_ms"]),
            "turn_p95_ms_during_training": summary(runs, ["during_training", "p95_ms"]),
            "turn_max_ms_during_swap": summary(runs, ["during_swap", "max_ms"]),
            "errors": summary(runs, ["during_training", "errors"]),
        },
        "runs": runs,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["median_of_runs"], indent=2))


if __name__ == "__main__":
    main()
