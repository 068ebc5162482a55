"""Has the caller finished? The rules on the NLU's parse (`bot/dialogue/turn_end.py`, what `callpilot run` uses)
against a small end-of-utterance model, on partial transcripts neither was built from.

The model: logistic regression on the NLU's own sentence vectors (all-MiniLM-L6-v2, no second encoder), trained on
the demo data (`nlu_data/`): every example is a whole utterance, every prefix of it that is not itself an example
an unfinished one. Both are tested on the held-out examples (`held_out/nlu.yml`, never trained on) and their
prefixes, and on the voice benchmark's callers: each script whole, and where a caller pauses (`|`) the words
before the pause (the caller goes on). Labels of prefixes are noisy ("where is my order" is a whole question and
a prefix of "where is my order 48215"); both judges see the same labels.

Reported per judge: on whole utterances the share ended early (COMPLETE: 250 ms); on unfinished words the share
ended early (a cut-in when the caller pauses longer than 250 ms) and the share held (800 / 1,200 ms); the
mean end-of-turn silence each class gets; time per judgement.

Run: .venv/bin/python bench/turn_end_benchmark.py [--out bench/results/turn_end.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from voice_benchmark import SCRIPTS  # noqa: E402

from bot.dialogue.turn_end import TurnEnd, judge_turn_end  # noqa: E402
from bot.nlu.storage import load_or_train  # noqa: E402
from bot.training_data import load_nlu_text, load_project  # noqa: E402
from callpilot.voice import id_patterns  # noqa: E402
from voice_gateway.vad import EndpointConfig  # noqa: E402

_ENDPOINT = EndpointConfig()
SILENCE = {TurnEnd.COMPLETE: _ENDPOINT.complete_silence_ms, TurnEnd.MAY_CONTINUE: _ENDPOINT.may_continue_silence_ms,
           TurnEnd.INCOMPLETE: _ENDPOINT.incomplete_silence_ms, TurnEnd.UNSURE: _ENDPOINT.end_of_turn_silence_ms}
SURE = 0.8  # the model's probability of "whole" above which it ends early; below 1 - SURE it holds the turn


def partials(texts: list[str], known: set[str]) -> list[tuple[str, bool]]:
    """Each text whole (True), and each of its word prefixes that is no known example (False)."""
    out: list[tuple[str, bool]] = []
    for text in texts:
        words = text.split()
        out.append((text, True))
        out += [(" ".join(words[:k]), False) for k in range(1, len(words)) if " ".join(words[:k]).lower() not in known]
    return out


def evaluate(judge: Callable[[str], TurnEnd], labelled: list[tuple[str, bool]]) -> dict[str, Any]:
    verdicts, took = [], []
    for text, _whole in labelled:
        began = time.perf_counter()
        verdicts.append(judge(text))
        took.append((time.perf_counter() - began) * 1000)
    whole = [v for v, (_, w) in zip(verdicts, labelled, strict=True) if w]
    cut = [v for v, (_, w) in zip(verdicts, labelled, strict=True) if not w]
    return {
        "whole": len(whole), "unfinished": len(cut),
        "whole_ended_early": round(sum(v is TurnEnd.COMPLETE for v in whole) / len(whole), 3),
        "unfinished_ended_early": round(sum(v is TurnEnd.COMPLETE for v in cut) / len(cut), 3),
        "unfinished_held": round(sum(v in (TurnEnd.INCOMPLETE, TurnEnd.MAY_CONTINUE) for v in cut) / len(cut), 3),
        "whole_mean_silence_ms": round(statistics.fmean(SILENCE[v] for v in whole)),
        "unfinished_mean_silence_ms": round(statistics.fmean(SILENCE[v] for v in cut)),
        "ms_per_judgement_p50": round(statistics.median(took), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "turn_end.json")
    args = parser.parse_args()
    from sklearn.linear_model import LogisticRegression

    engine = load_or_train(ROOT / "nlu_data", ROOT / "models")
    train = [e.text for e in load_project(ROOT / "nlu_data").nlu.examples if e.language == "en"]
    held = [e.text for e in load_nlu_text((ROOT / "held_out/nlu.yml").read_text(encoding="utf-8"),
                                          "held_out/nlu.yml").examples]
    known = {t.lower() for t in train + held}
    train_set = partials(train, known)
    vectors = engine.encoder.encode([text for text, _ in train_set])
    labels = [whole for _, whole in train_set]
    model = LogisticRegression(max_iter=2000, C=4.0, class_weight="balanced").fit(vectors, labels)
    patterns = [re.compile(p) for p in id_patterns(ROOT / "nlu_data")]

    def rules(text: str) -> TurnEnd:
        return judge_turn_end(text, lambda: engine.parse(text), id_patterns=patterns)

    def learned(text: str) -> TurnEnd:
        whole = float(model.predict_proba(engine.encoder.encode([text]))[0][1])
        return TurnEnd.COMPLETE if whole >= SURE else TurnEnd.INCOMPLETE if whole <= 1 - SURE else TurnEnd.UNSURE

    def both(text: str) -> TurnEnd:
        """The rules, but a request they would end early must also look whole to the model."""
        verdict = rules(text)
        if verdict is TurnEnd.COMPLETE and float(model.predict_proba(engine.encoder.encode([text]))[0][1]) < 0.5:
            return TurnEnd.UNSURE
        return verdict

    callers = [(s.replace("|", " ").replace("  ", " "), True) for s, _ in SCRIPTS]
    callers += [(s.split("|")[0].strip(), False) for s, _ in SCRIPTS if "|" in s]
    sets = {"held_out": partials(held, known), "voice_benchmark_callers": callers}
    report: dict[str, Any] = {
        "model": f"logistic regression (balanced classes) on the NLU's MiniLM vectors, {len(train_set)} partials "
                 f"({sum(w for _, w in train_set)} whole); ends early at P(whole) >= {SURE}, "
                 f"holds at <= {1 - SURE:.1f}",
        "silence_ms": {v.value: ms for v, ms in SILENCE.items()},
        "results": {name: {"rules": evaluate(rules, data), "model": evaluate(learned, data),
                           "rules_and_model": evaluate(both, data)}
                    for name, data in sets.items()},
    }
    print(json.dumps(report["results"], indent=1))
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
