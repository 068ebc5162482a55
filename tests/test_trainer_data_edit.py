"""Trainer edits to nlu_data/: round-trip YAML, validation before writing, version conflicts, git commits."""

from __future__ import annotations

import difflib
import shutil
import subprocess
from pathlib import Path

import pytest

from callpilot.trainer.data_edit import (
    DataEditor,
    EditRefused,
    VersionConflict,
    add_examples,
    replace_example,
    set_response,
)
from callpilot.trainer.markup import example_line

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    target = tmp_path / "nlu_data"
    shutil.copytree(ROOT / "nlu_data", target)
    return target


def snapshot(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): p.read_text() for p in sorted(folder.rglob("*.yml"))}


def test_an_added_example_is_the_only_change_comments_and_order_kept(data_dir: Path) -> None:
    before = snapshot(data_dir)
    editor = DataEditor(data_dir)
    editor.save(None, lambda f: add_examples(f, "check_order_status", ["has my parcel left yet"]), author="ann",
                message="m")
    after = snapshot(data_dir)
    assert [name for name in before if before[name] != after[name]] == ["nlu/orders.yml"]
    diff = [line for line in difflib.unified_diff(before["nlu/orders.yml"].splitlines(),
                                                  after["nlu/orders.yml"].splitlines(), lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert diff == ["+    - has my parcel left yet"]
    assert editor.read().examples("check_order_status")[-1] == "has my parcel left yet"


def test_edit_delete_example_and_responses(data_dir: Path) -> None:
    editor = DataEditor(data_dir)
    first = editor.read().examples("check_order_status")[0]
    editor.save(None, lambda f: replace_example(f, "check_order_status", first, "where's my stuff"), author="a",
                message="m")
    assert editor.read().examples("check_order_status")[0] == "where's my stuff"
    editor.save(None, lambda f: replace_example(f, "check_order_status", "where's my stuff", None), author="a",
                message="m")
    assert "where's my stuff" not in editor.read().examples("check_order_status")
    editor.save(None, lambda f: set_response(f, "utter_goodbye", ["Bye now!"]), author="a", message="m")
    assert editor.read().responses()["utter_goodbye"] == ["Bye now!"]
    assert "# Chit-chat." in (data_dir / "domain.yml").read_text()  # the comments stay
    counts = {i["intent"]: i["examples"] for i in editor.read().intents()}
    assert counts["check_order_status"] >= 5 and "greet" in counts


def test_the_second_save_on_an_old_version_is_a_conflict(data_dir: Path) -> None:
    editor = DataEditor(data_dir)
    version = editor.read().version
    editor.save(version, lambda f: add_examples(f, "greet", ["howdy partner"]), author="ann", message="m")
    with pytest.raises(VersionConflict):
        editor.save(version, lambda f: add_examples(f, "greet", ["good day to you"]), author="bob", message="m")
    assert "good day to you" not in editor.read().examples("greet")


def test_an_edit_that_breaks_validation_is_refused_with_file_and_line(data_dir: Path) -> None:
    editor = DataEditor(data_dir)
    before = snapshot(data_dir)
    # An entity the domain does not declare: the validator's own error, with file:line.
    with pytest.raises(EditRefused) as refused:
        editor.save(None, lambda f: add_examples(f, "greet", ["hi [bob](person_name)"]), author="a", message="m")
    assert "nlu/chitchat.yml:" in str(refused.value) and "person_name" in str(refused.value)
    assert snapshot(data_dir) == before


def test_yaml_another_editor_broke_is_reported_and_left_alone(data_dir: Path) -> None:
    broken = data_dir / "nlu/store.yml"
    broken.write_text(broken.read_text() + "\n  - intent: [oops\n")
    before = snapshot(data_dir)
    with pytest.raises(EditRefused, match=r"store\.yml:\d+"):
        DataEditor(data_dir).save(None, lambda f: add_examples(f, "greet", ["hiya"]), author="a", message="m")
    assert snapshot(data_dir) == before


@pytest.mark.parametrize(("text", "entities", "words"), [
    ("", [], "empty"),
    ("x" * 10_000, [], "at most"),
    ("call me", [{"start": 3, "end": 40, "entity": "city"}], "not inside"),
    ("ship to [Boston]", [], r"\[ \]"),
])
def test_bad_example_texts(text: str, entities: list[dict[str, object]], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        example_line(text, entities)


def test_entities_become_rasa_markup() -> None:
    assert example_line("ship it to New York", [{"start": 11, "end": 19, "entity": "city"}]) == \
        "ship it to [New York](city)"
    assert example_line("ship it to NYC", [{"start": 11, "end": 14, "entity": "city", "value": "New York"}]) == \
        'ship it to [NYC]{"entity": "city", "value": "New York"}'


def test_each_save_is_a_git_commit_by_the_trainer(data_dir: Path) -> None:
    git = ["git", "-C", str(data_dir), "-c", "user.name=t", "-c", "user.email=t@x"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "start"], check=True)
    DataEditor(data_dir).save(None, lambda f: add_examples(f, "greet", ["well hello there trainer"]), author="Ann Trainer",
                              message="trainer: greet")
    log = subprocess.run([*git, "log", "-1", "--format=%an|%s"], capture_output=True, text=True, check=True)
    assert log.stdout.strip() == "Ann Trainer|trainer: greet"
    status = subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True, check=True)
    assert status.stdout == ""
    DataEditor(data_dir).save(None, lambda f: add_examples(f, "greet", ["well hello there trainer"]), author="A",
                              message="again")  # no change: no commit, no error
    log = subprocess.run([*git, "log", "-1", "--format=%s"], capture_output=True, text=True, check=True)
    assert log.stdout.strip() == "trainer: greet"


def test_the_comparison_of_new_and_active_model() -> None:
    from callpilot.trainer.compare import held_out_comparison, inbox_comparison

    texts, truth = ["a", "b", "c", "d"], ["x", "x", "y", "y"]
    result = held_out_comparison(texts, truth, new=["x", "y", "y", "y"], old=["x", "x", "y", "x"])
    assert result["new"]["accuracy"] == 0.75 and result["old"]["accuracy"] == 0.75
    assert result["worse"] == [{"text": "b", "intent": "x", "old": "x", "new": "y"}]
    assert result["better"] == [{"text": "d", "intent": "y", "old": "x", "new": "y"}]
    assert {c["intent"] for c in result["f1_changes"]} == {"x", "y"} or result["f1_changes"] == []

    def parse(name: str, confidence: float) -> dict[str, object]:
        return {"intent": {"name": name, "confidence": confidence}}

    items = [{"id": 1, "text": "gift wrap", "expected": "product_info"}, {"id": 2, "text": "hm"},
             {"id": 3, "text": "wrong", "expected": "greet"}]
    handled = inbox_comparison(items, [parse("product_info", 0.9), parse("nlu_fallback", 0.3), parse("deny", 0.9)],
                               [parse("payment_methods", 0.3), parse("nlu_fallback", 0.3), parse("deny", 0.9)], 0.5)
    assert [h["id"] for h in handled] == [1]


def test_a_chinese_example_goes_to_the_intents_chinese_file(data_dir: Path) -> None:
    before = snapshot(data_dir)
    editor = DataEditor(data_dir)
    editor.save(None, lambda f: add_examples(f, "check_order_status", ["我的快递到哪儿了", "has my parcel left yet"]),
                author="ann", message="m")
    after = snapshot(data_dir)
    changed = sorted(name for name in after if after[name] != before.get(name))
    assert changed == ["nlu/orders.yml", "zh/nlu/orders.yml"]
    assert "- 我的快递到哪儿了\n" in after["zh/nlu/orders.yml"] and "我的快递" not in after["nlu/orders.yml"]
    # An intent created with Chinese examples: declared in the domain, its examples in the Chinese folder.
    editor.save(None, lambda f: add_examples(f, "gift_wrap", ["能帮我包装成礼物吗", "可以礼品包装吗", "要礼盒包装",
                                                              "帮我包一下送人用", "有礼品包装服务吗"], new_intent=True),
                author="ann", message="m")
    after = snapshot(data_dir)
    assert "gift_wrap" in after["zh/nlu/trainer.yml"] and "- gift_wrap" in after["domain.yml"]
    assert "nlu/trainer.yml" not in after
