"""Combine repeated benchmark runs (e.g. `voice_benchmark.py --seed 7/8/9 --out ...`) into one report: for
each N and each figure, the median over the runs and the spread (min-max), with every run's load average.

Run: .venv/bin/python bench/combine_runs.py RUN.json [RUN.json ...] --out bench/results/voice.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any


def combine(reports: list[dict[str, Any]]) -> dict[str, Any]:
    by_n: dict[int, list[dict[str, Any]]] = {}
    for report in reports:
        for run in report["runs"]:
            by_n.setdefault(int(run["concurrent_calls"]), []).append(run)
    runs = []
    for n, rows in sorted(by_n.items()):
        combined: dict[str, Any] = {"concurrent_calls": n, "runs": len(rows)}
        for key in rows[0]:
            if key == "concurrent_calls":
                continue
            if all(isinstance(row.get(key), dict) for row in rows):  # e.g. per voice: the median of each
                names = sorted({name for row in rows for name in row[key]})
                combined[key] = {name: round(statistics.median([row[key][name] for row in rows if name in row[key]]), 3)
                                 for name in names}
                continue
            values = [row[key] for row in rows if isinstance(row.get(key), int | float)]
            if not values:
                combined[key] = None
                continue
            combined[key] = round(statistics.median(values), 3)
            combined[f"{key}_spread"] = [round(min(values), 3), round(max(values), 3)]
        runs.append(combined)
    settings = {key: reports[0][key] for key in ("language", "turn_end", "transport", "workers",
                                                  "asr_processes_per_worker") if key in reports[0]}
    return {
        "runs": runs,
        **settings,
        "machine": {**reports[0]["machine"],
                    "load_average_before_each_run": [r["machine"].get("load_average_before") for r in reports]},
        "notes": [f"median over {len(reports)} runs (each with its own callers: --seed), spread = [min, max]",
                  *reports[0]["notes"][:-len(reports[0]["runs"])],
                  *[line for report in reports for line in report["notes"][-len(report["runs"]):]]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    reports = [json.loads(path.read_text(encoding="utf-8")) for path in args.runs]
    args.out.write_text(json.dumps(combine(reports), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
