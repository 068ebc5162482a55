"""One training job, run as its own (nice'd) process: train without activating, snapshot the data the model was
trained on, then compare it with the active model. Everything goes to files in the job's folder:
`progress.json` while it runs, then `result.json` or `error.json`.

    python -m callpilot.trainer.worker JOB_DIR      (JOB_DIR/job.json says what to do)
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from bot.dialogue.conversation_tests import Clock, run_conversation_dir
from bot.dialogue.engine import DialogueEngine
from bot.dialogue.factory import build_engine
from bot.nlu.engine import NLUConfig, NLUEngine
from bot.nlu.storage import active_id, load, model_id_for, save
from bot.training_data import load_project
from bot.training_data.project import load_nlu_text
from callpilot.trainer.compare import held_out_comparison, inbox_comparison

DATA_SNAPSHOT = "data"  # models/<id>/data: the domain, rules, responses and IVR the model goes live with
TRAINER_MARK = "trainer.json"  # models/<id>/trainer.json: trained on the workbench (its evaluation)


def activated_on_workbench(models_dir: Path) -> bool:
    """Is the active model one trained on the workbench (then a restart loads it as is, never retraining)?"""
    model_id = active_id(models_dir)
    return model_id is not None and (models_dir / model_id / TRAINER_MARK).exists()


def _write(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=1, default=str))
    os.replace(tmp, path)


def _conversations(folder: Path | None, data_dir: Path, interpreter: NLUEngine) -> dict[str, Any] | None:
    if folder is None or not folder.is_dir():
        return None

    def factory(now: Clock) -> DialogueEngine:
        return build_engine(data_dir, interpreter, now=now)

    results = run_conversation_dir(folder, factory)
    return {"passed": sum(r.passed for r in results), "total": len(results),
            "failed": [{"name": r.name, "path": r.path, "failures": list(r.failures)} for r in results if not r.passed]}


def run(job_dir: Path) -> dict[str, Any]:
    job = json.loads((job_dir / "job.json").read_text())
    data_dir, models_dir = Path(job["data_dir"]), Path(job["models_dir"])
    progress_file = job_dir / "progress.json"
    started = time.time()

    def progress(stage: str, done: int, total: int) -> None:
        _write(progress_file, {"stage": stage, "done": done, "total": total, "at": time.time()})

    progress("loading data", 0, 1)
    project = load_project(data_dir, strict=True)
    config = NLUConfig()
    model_id = model_id_for(project, config)
    old_id = active_id(models_dir)
    if not (models_dir / model_id / "meta.json").exists():
        engine = NLUEngine.train(project.nlu, set(project.domain.entities), config=config, model_id=model_id,
                                 progress=progress)
        save(engine, models_dir, activate=False)  # never active until a trainer activates it
    snapshot = models_dir / model_id / DATA_SNAPSHOT
    shutil.rmtree(snapshot, ignore_errors=True)
    shutil.copytree(data_dir, snapshot, ignore=shutil.ignore_patterns(".*"))
    progress("evaluating", 0, 3)
    new = load(models_dir, model_id)
    old = load(models_dir, old_id) if old_id and old_id != model_id else (new if old_id == model_id else None)
    evaluation: dict[str, Any] = {"model_id": model_id, "active_id": old_id}
    held_out = Path(job["held_out"]) if job.get("held_out") else None
    if held_out is not None and held_out.is_file():
        examples = load_nlu_text(held_out.read_text(), held_out.as_posix()).examples
        trained = {e.text.lower() for e in project.nlu.examples}
        kept = [e for e in examples if e.text.lower() not in trained]  # never judge on what it trained on
        texts, truth = [e.text for e in kept], [e.intent for e in kept]
        new_pred = [p["intent"]["name"] for p in new.parse_many(texts)]
        old_pred = [p["intent"]["name"] for p in old.parse_many(texts)] if old is not None else None
        evaluation["held_out"] = {"file": held_out.as_posix(), "dropped_as_trained": len(examples) - len(kept),
                                  **held_out_comparison(texts, truth, new_pred, old_pred)}
    else:
        evaluation["held_out"] = None
    progress("conversation tests", 1, 3)
    folder = Path(job["conversations"]) if job.get("conversations") else None
    evaluation["conversations"] = _conversations(folder, snapshot, new)
    progress("inbox", 2, 3)
    items = job.get("inbox") or []
    texts = [i["text"] for i in items]
    evaluation["inbox_handled"] = inbox_comparison(
        items, new.parse_many(texts) if texts else [], old.parse_many(texts) if (old and texts) else None,
        float(job.get("threshold", 0.5)))
    conversations = evaluation["conversations"]
    evaluation["breaks_conversations"] = bool(conversations and conversations["failed"])
    evaluation["seconds"] = round(time.time() - started, 1)
    _write(models_dir / model_id / TRAINER_MARK, {"evaluation": evaluation, "job": job_dir.name})
    progress("compared", 3, 3)
    return evaluation


def main(argv: list[str]) -> int:
    job_dir = Path(argv[1])
    try:
        _write(job_dir / "result.json", run(job_dir))
        return 0
    except BaseException as exc:
        _write(job_dir / "error.json", {"error": f"{type(exc).__name__}: {exc}",
                                        "trace": traceback.format_exc(limit=8)})
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
