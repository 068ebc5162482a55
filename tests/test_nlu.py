"""The NLU engine: spoken numbers, entities, parse format, model storage, demo accuracy."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import sklearn_crfsuite

from bot.nlu import NLUEngine, load, train_project
from bot.nlu.entities import CRFExtractor, PatternExtractors
from bot.nlu.evaluate import held_out
from bot.nlu.numbers import normalise_numbers
from bot.nlu.storage import active_id, model_id_for
from bot.training_data import load_project
from bot.training_data.model import DataError

ROOT = Path(__file__).resolve().parent.parent


# Spoken numbers


@pytest.mark.parametrize(
    ("spoken", "normalised"),
    [
        ("four eight two one three", "48213"),
        ("my order is four eight two one five please", "my order is 48215 please"),
        ("four oh two one five", "40215"),
        ("double four five six", "4456"),
        ("forty eight thousand two hundred fifteen", "48215"),
        ("it's 4 8 2 1 5", "it's 48215"),
        ("call me on five five five oh one two three", "call me on 5550123"),
        # Short runs and counted things stay words.
        ("I want one fridge and two ovens", "I want one fridge and two ovens"),
        ("one two", "one two"),
        ("oh no", "oh no"),
    ],
)
def test_spoken_numbers_are_normalised(spoken: str, normalised: str) -> None:
    assert normalise_numbers(spoken).text == normalised


def test_normalised_offsets_point_back_into_the_original() -> None:
    text = "order four eight two one five and r one zero four two three three"
    norm = normalise_numbers(text)
    assert norm.text == "order 48215 and r 104233"
    start = norm.text.index("48215")
    assert norm.to_original(start, start + 5) == (6, 29)
    assert text[6:29] == "four eight two one five"
    assert norm.from_original(6, 29) == (start, start + 5)
    # Text after a rewrite keeps its own offsets.
    and_at = norm.text.index("and")
    assert text[slice(*norm.to_original(and_at, and_at + 3))] == "and"


# The demo model's parse output


def test_parse_has_rasas_format(nlu_engine: NLUEngine) -> None:
    result = nlu_engine.parse("hi I want to know where my order 48215 is")
    assert set(result) == {"text", "intent", "entities", "intent_ranking", "language"}
    assert result["language"] == "en"
    assert result["text"] == "hi I want to know where my order 48215 is"
    assert result["intent"]["name"] == "check_order_status"
    assert 0.5 < result["intent"]["confidence"] <= 1.0
    ranking = result["intent_ranking"]
    assert ranking[0] == result["intent"]
    assert [r["confidence"] for r in ranking] == sorted((r["confidence"] for r in ranking), reverse=True)
    assert 1 < len(ranking) <= 10
    (entity,) = result["entities"]
    assert entity == {
        "entity": "order_number",
        "start": 33,
        "end": 38,
        "confidence_entity": 1.0,
        "value": "48215",
        "extractor": "RegexEntityExtractor",
    }


@pytest.mark.parametrize(
    ("text", "entity", "value", "raw"),
    [
        ("my order number is four eight two one five", "order_number", "48215", "four eight two one five"),
        ("where is order 4 1 8 7 7", "order_number", "41877", "4 1 8 7 7"),
        ("my repair number is R104233", "repair_number", "R104233", "R104233"),
        ("send it to jane.doe@example.com please", "email", "jane.doe@example.com", "jane.doe@example.com"),
        ("my fridge is leaking water", "product", "refrigerator", "fridge"),
        ("is there a store in chicago", "city", "chicago", "chicago"),
    ],
)
def test_entities_are_extracted_and_normalised(
    nlu_engine: NLUEngine, text: str, entity: str, value: str, raw: str
) -> None:
    found = [e for e in nlu_engine.parse(text)["entities"] if e["entity"] == entity]
    assert found, nlu_engine.parse(text)
    assert found[0]["value"] == value
    assert text[found[0]["start"] : found[0]["end"]] == raw


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("uh yeah I'm calling about my fridge it stopped cooling", "technical_fault"),
        ("what time do you open on sunday", "opening_hours"),
        ("can I talk to a real person please", "talk_to_human"),
        ("how long do I have to return something", "return_policy"),
        ("what's the capital of france", "out_of_scope"),
        ("yes please", "affirm"),
    ],
)
def test_demo_intents(nlu_engine: NLUEngine, text: str, intent: str) -> None:
    assert nlu_engine.parse(text)["intent"]["name"] == intent


@pytest.mark.parametrize("text", ["", "   ", "\x00\x07", "🙂🙂🙂", "x" * 10_000, "訂單🙂order ４８"])
def test_odd_input_never_crashes(nlu_engine: NLUEngine, text: str) -> None:
    result = nlu_engine.parse(text)
    assert result["text"] == text
    assert isinstance(result["intent"]["name"], str)
    assert 0.0 <= result["intent"]["confidence"] <= 1.0


def test_chinese_is_understood_not_odd_input(nlu_engine: NLUEngine) -> None:
    result = nlu_engine.parse("我的订单在哪里")
    assert (result["language"], result["intent"]["name"]) == ("zh", "check_order_status")


def test_empty_text_is_a_fallback(nlu_engine: NLUEngine) -> None:
    assert nlu_engine.parse("")["intent"] == {"name": "nlu_fallback", "confidence": 0.0}


# Accuracy on held-out demo data


@pytest.mark.slow  # trains a model on 80 % of the demo data (about two minutes)
def test_demo_model_is_accurate_on_held_out_examples() -> None:
    project = load_project(ROOT / "nlu_data")
    english = project.nlu.for_language("en")  # the Chinese model: test_nlu_chinese.py
    evaluation = held_out(english, set(project.domain.entities), test_fraction=0.2, seed=1)
    assert len(evaluation.examples) > 200
    assert evaluation.accuracy >= 0.90, evaluation.misclassified()
    assert evaluation.report()["entities"]["f1"] >= 0.85


# Model storage


SMALL_NLU = """version: "3.1"
nlu:
- intent: greet
  examples: |
    - hello
    - hi there
    - good morning
    - hey
    - hello there
- intent: check_order_status
  examples: |
    - where is my order [48215](order_number)
    - status of order [41877](order_number)
    - has my order shipped
    - track my order please
    - when will order [42001](order_number) arrive
"""
SMALL_DOMAIN = """version: "3.1"
intents: [greet, check_order_status]
entities: [order_number]
responses:
  utter_greet:
  - text: "Hello!"
"""


def _small_project(folder: Path) -> Path:
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "nlu.yml").write_text(SMALL_NLU)
    (folder / "domain.yml").write_text(SMALL_DOMAIN)
    return folder


def test_training_is_skipped_when_data_and_config_are_unchanged(tmp_path: Path, nlu_engine: NLUEngine) -> None:
    data = _small_project(tmp_path / "proj")
    models = tmp_path / "models"
    first = train_project(load_project(data), models, encoder=nlu_engine.encoder)
    assert first.trained
    assert active_id(models) == first.engine.model_id
    again = train_project(load_project(data), models, encoder=nlu_engine.encoder)
    assert not again.trained
    assert again.engine.model_id == first.engine.model_id
    loaded = load(models, encoder=nlu_engine.encoder)
    assert loaded.parse("where is my order 48215")["intent"]["name"] == "check_order_status"

    # A changed example gives a new model id, and the new model becomes active.
    (data / "data" / "nlu.yml").write_text(SMALL_NLU.replace("good morning", "good evening"))
    changed = train_project(load_project(data), models, encoder=nlu_engine.encoder)
    assert changed.trained and changed.engine.model_id != first.engine.model_id
    assert active_id(models) == changed.engine.model_id
    assert model_id_for(load_project(data), changed.engine.config) == changed.engine.model_id


def test_broken_data_never_replaces_the_working_model(tmp_path: Path, nlu_engine: NLUEngine) -> None:
    data = _small_project(tmp_path / "proj")
    models = tmp_path / "models"
    working = train_project(load_project(data), models, encoder=nlu_engine.encoder).engine.model_id
    (data / "data" / "nlu.yml").write_text(SMALL_NLU.replace("- hey\n", "- hey\n  bad: [\n"))
    with pytest.raises(DataError) as err:
        load_project(data)
    assert "nlu.yml:" in str(err.value)
    assert active_id(models) == working
    assert sorted(p.name for p in models.iterdir() if not p.name.startswith(".")) == ["active", working]


def test_a_loaded_model_tags_entities_in_memory_and_a_killed_process_leaves_no_file(
    tmp_path: Path, nlu_engine: NLUEngine
) -> None:
    """sklearn-crfsuite wrote the CRF to a temporary file at every load, deleted only when garbage-collected:
    every killed server left a /tmp/model*.crfsuite behind."""
    models = tmp_path / "models"
    train_project(load_project(_small_project(tmp_path / "proj")), models, encoder=nlu_engine.encoder)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    script = (
        "import json, os, signal; from pathlib import Path; from bot.nlu import load\n"
        f"engine = load(Path({str(models)!r}))\n"
        "print(json.dumps(engine.parse('where is my order 48215')['entities']), flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TMPDIR": str(scratch), "HF_HUB_OFFLINE": "1"})
    assert done.returncode == -signal.SIGKILL, done.stderr
    entities = json.loads(done.stdout)
    assert [(e["entity"], e["value"], e["extractor"]) for e in entities] == [
        ("order_number", "48215", "CRFEntityExtractor")
    ]
    assert list(scratch.glob("*.crfsuite")) == []


def test_a_crf_saved_by_sklearn_crfsuite_still_loads_and_its_file_is_deleted(tmp_path: Path) -> None:
    """Models saved before 2026-12-05 hold sklearn-crfsuite's estimator: they load, and tag alike."""
    project = load_project(_small_project(tmp_path / "proj"))
    patterns = PatternExtractors.from_data(project.nlu, {"order_number"})
    trained = CRFExtractor.train(project.nlu.examples, patterns)
    estimator = sklearn_crfsuite.CRF()  # what the old format held: the estimator and its temporary file
    estimator.modelfile.ensure_name()
    Path(estimator.modelfile.name).write_bytes(trained.model or b"")
    old_file = Path(estimator.modelfile.name)
    legacy = CRFExtractor.__new__(CRFExtractor)
    legacy.__setstate__({"model": estimator})
    assert not old_file.exists()
    text = normalise_numbers("has order 41877 shipped")
    assert legacy.extract(text, patterns) == trained.extract(text, patterns)
    assert [e.value for e in legacy.extract(text, patterns)] == ["41877"]
    again = pickle.loads(pickle.dumps(legacy))
    assert again.model == trained.model and again.extract(text, patterns) == trained.extract(text, patterns)


def test_missing_model_folder_is_reported(tmp_path: Path) -> None:
    from bot.nlu import ModelNotFound

    with pytest.raises(ModelNotFound, match="callpilot train"):
        load(tmp_path / "nothing-here")
    shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.mark.parametrize("text", ["flarp gnn vrrk", "blorp zzkt qwx"])
def test_gibberish_is_not_understood(nlu_engine: NLUEngine, text: str) -> None:
    """Far from every training example: the nearest-neighbour rule or out_of_scope catches it."""
    assert nlu_engine.parse(text)["intent"]["name"] in ("nlu_fallback", "out_of_scope")


def test_out_of_scope_prediction_stands(nlu_engine: NLUEngine) -> None:
    result = nlu_engine.parse("can you book me a flight to paris")
    assert result["intent"]["name"] == "out_of_scope"


def test_old_models_are_pruned_but_never_the_active_one(tmp_path: Path) -> None:
    import os

    from bot.nlu.storage import prune, set_active

    for age, model_id in enumerate(["nlu-new", "nlu-mid", "nlu-old", "nlu-oldest"]):
        folder = tmp_path / model_id
        folder.mkdir()
        (folder / "meta.json").write_text("{}")
        os.utime(folder / "meta.json", (1_000_000 - age * 100, 1_000_000 - age * 100))
    (tmp_path / "not-a-model").mkdir()
    set_active(tmp_path, "nlu-oldest")  # e.g. rolled back to an old model on purpose

    removed = prune(tmp_path, keep=2)

    assert sorted(removed) == ["nlu-mid", "nlu-old"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["nlu-new", "nlu-oldest", "not-a-model"]
    assert active_id(tmp_path) == "nlu-oldest"
