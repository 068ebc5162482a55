"""Export `nlu_data/` as a trainable Rasa 3.6 project: `python -m bot.rasa_brain.export OUT_DIR`.

The action token callpilot's `POST /webhook` wants comes from `CALLPILOT_ACTION_TOKEN` (never from the command
line, which other users can see) and is written into `endpoints.yml`, readable by its owner only.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from bot.rasa_brain.project import DEFAULT_ACTION_URL, ExportPlan, SourceFile, plan_export

YAML_SUFFIXES = (".yml", ".yaml")
SECRET_FILES = ("endpoints.yml",)  # holds the action token: mode 0600
TOKEN_ENV = "CALLPILOT_ACTION_TOKEN"


def read_sources(data_dir: Path) -> list[SourceFile]:
    """Read every YAML file under `data_dir` (hidden files and folders excluded)."""
    sources: list[SourceFile] = []
    for path in sorted(data_dir.rglob("*")):
        relative = path.relative_to(data_dir)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.is_file() and path.suffix in YAML_SUFFIXES:
            sources.append(SourceFile(relative.as_posix(), path.read_text(encoding="utf-8")))
    return sources


def write_plan(plan: ExportPlan, out_dir: Path) -> list[str]:
    """Write the plan's files, touching only changed ones; drop stale data files. Returns changed."""
    changed: list[str] = []
    for relative, text in plan.files.items():
        target = out_dir / relative
        if target.is_file() and target.read_text(encoding="utf-8") == text:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        if relative in SECRET_FILES:
            tmp.chmod(0o600)
        tmp.replace(target)
        changed.append(relative)
    data_dir = out_dir / "data"
    if data_dir.is_dir():
        for stale in sorted(data_dir.rglob("*")):
            relative = stale.relative_to(out_dir).as_posix()
            if stale.is_file() and relative not in plan.files:
                stale.unlink()
                changed.append(relative)
    return changed


def export(data_dir: Path, out_dir: Path, *, action_url: str = DEFAULT_ACTION_URL, action_token: str | None = None,
           epochs: int = 80) -> ExportPlan:
    """Read `data_dir`, write the Rasa project into `out_dir`, and return what was planned."""
    if not data_dir.is_dir():
        raise FileNotFoundError(f"no data directory at {data_dir}")
    plan = plan_export(read_sources(data_dir), action_url=action_url, action_token=action_token, epochs=epochs)
    if "domain.yml" not in plan.files:
        raise ValueError(f"{data_dir}: no Rasa domain file (intents/responses/...) found")
    write_plan(plan, out_dir)
    return plan


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out_dir", type=Path, help="where to write the Rasa project")
    parser.add_argument("--data", type=Path, default=Path("nlu_data"), help="source data folder")
    parser.add_argument("--action-url", default=DEFAULT_ACTION_URL, help="action server URL")
    parser.add_argument("--epochs", type=int, default=80, help="DIETClassifier epochs")
    args = parser.parse_args(argv)
    try:
        plan = export(args.data, args.out_dir, action_url=args.action_url,
                      action_token=os.environ.get(TOKEN_ENV) or None, epochs=args.epochs)
    except (OSError, ValueError) as exc:
        print(f"export failed: {exc}", file=sys.stderr)
        return 1
    data_files = sum(1 for name in plan.files if name.startswith("data/"))
    print(f"exported {data_files} data file(s) + domain to {args.out_dir}")
    if not os.environ.get(TOKEN_ENV):
        print(f"  no {TOKEN_ENV}: callpilot's POST /webhook will refuse this Rasa's action calls", file=sys.stderr)
    for name in plan.skipped:
        print(f"  skipped (not Rasa YAML): {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
