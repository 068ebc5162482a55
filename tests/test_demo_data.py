"""Sanity checks of the demo assistant's training data in `nlu_data/`, read with plain PyYAML."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.backoffice import (
    BackOffice,
    normalize_email,
    normalize_order_number,
    normalize_phone,
    normalize_repair_number,
)
from bot.training_data import load_project

DATA = Path(__file__).resolve().parent.parent / "nlu_data"


def _english_files() -> list[Path]:
    """The English data (the Chinese data in nlu_data/zh/ is checked by test_demo_data_zh.py)."""
    return sorted(p for p in DATA.rglob("*.yml") if p.relative_to(DATA).parts[0] != "zh")
INTENTS = [
    "greet",
    "goodbye",
    "affirm",
    "deny",
    "thank",
    "repeat",
    "check_order_status",
    "delivery_time",
    "change_delivery_address",
    "cancel_order",
    "return_policy",
    "refund_status",
    "warranty_info",
    "product_info",
    "opening_hours",
    "store_location",
    "payment_methods",
    "invoice_request",
    "track_repair",
    "book_installation",
    "account_help",
    "complaint",
    "talk_to_human",
    "technical_fault",
    "billing_dispute",
    "out_of_scope",
]
CONFUSABLE = [
    "check_order_status",
    "delivery_time",
    "cancel_order",
    "change_delivery_address",
    "return_policy",
    "refund_status",
    "track_repair",
    "technical_fault",
    "warranty_info",
    "complaint",
    "billing_dispute",
    "talk_to_human",
    "affirm",
    "deny",
]
ENTITIES = {"order_number", "repair_number", "product", "city", "date", "email", "phone_number"}
# Actions every Rasa assistant has without declaring them.
RASA_DEFAULT_ACTIONS = {
    "action_listen",
    "action_restart",
    "action_session_start",
    "action_default_fallback",
    "action_deactivate_loop",
    "action_two_stage_fallback",
    "action_default_ask_affirmation",
    "action_default_ask_rephrase",
    "action_back",
    "action_unlikely_intent",
    "action_extract_slots",
}
_MARKUP = re.compile(r"\[(?P<text>[^\]]+)\](?:\((?P<short>[^)]+)\)|(?P<json>\{[^}]+\}))")


@dataclass(frozen=True)
class Annotation:
    entity: str
    text: str
    value: str
    role: str | None


@dataclass(frozen=True)
class Example:
    intent: str
    text: str  # without markup
    annotations: tuple[Annotation, ...]
    path: str


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _annotation(match: re.Match[str]) -> Annotation:
    text = match["text"]
    if match["short"] is not None:
        entity, _, value = match["short"].partition(":")
        return Annotation(entity, text, value or text, None)
    spec = json.loads(match["json"])
    return Annotation(spec["entity"], text, spec.get("value", text), spec.get("role"))


def _examples() -> list[Example]:
    out: list[Example] = []
    for path in _english_files():
        doc = _load(path)
        for item in doc.get("nlu", []) if isinstance(doc, dict) else []:
            if "intent" not in item:
                continue
            for line in str(item["examples"]).splitlines():
                if not line.strip():
                    continue
                assert line.lstrip().startswith("- "), f"{path}: {line!r}"
                marked = line.strip()[2:]
                plain = _MARKUP.sub(lambda m: m["text"], marked)
                annotations = tuple(_annotation(m) for m in _MARKUP.finditer(marked))
                out.append(Example(item["intent"], plain, annotations, path.name))
    return out


def _nlu_items(kind: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for path in _english_files():
        doc = _load(path)
        if isinstance(doc, dict):
            items += [item for item in doc.get("nlu", []) if kind in item]
    return items


EXAMPLES = _examples()
DOMAIN: dict[str, Any] = _load(DATA / "domain.yml")
RULES: list[dict[str, Any]] = _load(DATA / "rules.yml")["rules"]


def _entity_names(domain: dict[str, Any]) -> dict[str, set[str]]:
    """Declared entity -> its declared roles."""
    out: dict[str, set[str]] = {}
    for entry in domain["entities"]:
        if isinstance(entry, str):
            out[entry] = set()
        else:
            ((name, spec),) = entry.items()
            out[name] = set(spec.get("roles", []))
    return out


def test_every_yaml_file_parses_and_rasa_files_say_version_3_1() -> None:
    paths = _english_files()
    assert len(paths) >= 10
    for path in paths:
        doc = _load(path)
        if isinstance(doc, dict) and {"nlu", "rules", "intents"} & set(doc):
            assert doc.get("version") == "3.1", path


@pytest.mark.parametrize("intent", INTENTS)
def test_every_intent_has_enough_examples(intent: str) -> None:
    count = sum(1 for e in EXAMPLES if e.intent == intent)
    needed = 60 if intent == "out_of_scope" else 45 if intent in CONFUSABLE else 30
    assert count >= needed, f"{intent}: {count} examples, want {needed}"


def test_no_example_is_repeated_or_shared_between_intents() -> None:
    seen: dict[str, str] = {}
    clashes = []
    for example in EXAMPLES:
        key = " ".join(example.text.lower().split())
        if key in seen:
            clashes.append(f"{key!r}: {seen[key]} and {example.intent}")
        seen[key] = example.intent
    assert clashes == []


def test_nlu_intents_are_exactly_the_domain_intents() -> None:
    assert sorted({e.intent for e in EXAMPLES}) == sorted(DOMAIN["intents"]) == sorted(INTENTS)


def test_entity_annotations_use_declared_entities_and_roles() -> None:
    declared = _entity_names(DOMAIN)
    assert set(declared) == ENTITIES
    wrong = [
        (e.text, a)
        for e in EXAMPLES
        for a in e.annotations
        if a.entity not in declared or (a.role is not None and a.role not in declared[a.entity])
    ]
    assert wrong == []
    used = {a.entity for e in EXAMPLES for a in e.annotations}
    assert used == ENTITIES
    assert any(a.role == "destination" for e in EXAMPLES for a in e.annotations)


def test_annotated_values_are_ids_and_products_the_back_office_knows() -> None:
    office = BackOffice.demo()
    problems = []
    for example in EXAMPLES:
        for a in example.annotations:
            if a.entity == "product" and office.product(a.value) is None:
                problems.append(f"unknown product {a.value!r}")
            if a.entity == "order_number" and office.order(a.value) is None:
                problems.append(f"unknown order {a.value!r} ({normalize_order_number(a.value)})")
            if a.entity == "repair_number" and office.repair(a.value) is None:
                problems.append(f"unknown repair {a.value!r} ({normalize_repair_number(a.value)})")
            if a.entity == "email" and normalize_email(a.value) != a.value:
                problems.append(f"email value not normalized: {a.value!r}")
            if a.entity == "phone_number" and normalize_phone(a.value) is None:
                problems.append(f"not a phone number: {a.value!r}")
    assert problems == []


def test_regexes_compile_and_catch_the_id_formats() -> None:
    patterns = {
        item["regex"]: str(item["examples"]).split("- ", 1)[1].strip()
        for item in _nlu_items("regex")
    }
    assert set(patterns) == {"order_number", "repair_number", "email", "phone_number"}
    assert re.search(patterns["order_number"], "my order is 48215 thanks")
    assert re.search(patterns["order_number"], "4302291")
    assert not re.search(patterns["order_number"], "12345 or 4821 or 481234567")
    assert re.search(patterns["repair_number"], "repair R104233 please")
    assert not re.search(patterns["repair_number"], "R10423")
    assert re.search(patterns["email"], "send it to anna.berg@gmail.com")
    assert re.search(patterns["phone_number"], "call me on +1 617 555 0142")


def test_synonyms_and_lookups_fit_the_back_office() -> None:
    office = BackOffice.demo()
    for item in _nlu_items("synonym"):
        assert office.product(item["synonym"]) is not None, item["synonym"]
    lookups = {item["lookup"]: str(item["examples"]) for item in _nlu_items("lookup")}
    assert set(lookups) == {"product", "city"}
    cities = [line.strip()[2:] for line in lookups["city"].splitlines() if line.strip()]
    assert {store.city.lower() for store in office.stores} <= set(cities)
    assert all(office.nearest_store(city) is not None for city in cities)


def test_rules_use_declared_intents_actions_responses_and_forms() -> None:
    known_actions = set(DOMAIN["actions"]) | set(DOMAIN["responses"]) | set(DOMAIN["forms"])
    known_actions |= RASA_DEFAULT_ACTIONS
    problems = []
    for rule in RULES:
        for step in rule.get("condition", []) + rule["steps"]:
            if "action" in step and step["action"] not in known_actions:
                problems.append(f"{rule['rule']}: unknown action {step['action']}")
            if "intent" in step and step["intent"] not in set(DOMAIN["intents"]) | {"nlu_fallback"}:
                problems.append(f"{rule['rule']}: unknown intent {step['intent']}")
            loop = step.get("active_loop", "null")
            if loop is not None and loop != "null" and loop not in DOMAIN["forms"]:
                problems.append(f"{rule['rule']}: unknown form {loop}")
    assert problems == []


def test_every_intent_and_form_is_used_by_a_rule() -> None:
    intents = {step["intent"] for rule in RULES for step in rule["steps"] if "intent" in step}
    assert set(INTENTS) | {"nlu_fallback"} == intents
    actions = {step["action"] for rule in RULES for step in rule["steps"] if "action" in step}
    assert set(DOMAIN["forms"]) <= actions
    assert set(DOMAIN["actions"]) <= actions
    submitted = defaultdict(list)
    for rule in RULES:
        loops = [c.get("active_loop") for c in rule.get("condition", [])]
        if loops and any(step.get("active_loop", "x") is None for step in rule["steps"]):
            submitted[loops[0]].append(rule["rule"])
    assert sorted(submitted) == sorted(DOMAIN["forms"])


def test_response_placeholders_are_declared_slots() -> None:
    slots = set(DOMAIN["slots"])
    missing = {
        (name, placeholder)
        for name, variants in DOMAIN["responses"].items()
        for variant in variants
        for placeholder in re.findall(r"\{(\w+)\}", variant["text"])
        if placeholder not in slots
    }
    assert missing == set()
    for required in ("utter_greet", "utter_goodbye", "utter_you_are_welcome"):
        assert len(DOMAIN["responses"][required]) >= 2
    assert "{order_number}" in DOMAIN["responses"]["utter_confirm_cancel"][0]["text"]


def test_forms_can_fill_and_ask_for_every_required_slot() -> None:
    for form, spec in DOMAIN["forms"].items():
        for slot in spec["required_slots"]:
            mappings = DOMAIN["slots"][slot]["mappings"]
            by_entity = any(m["type"] == "from_entity" and m["entity"] == slot for m in mappings)
            # a free answer (the verification question) is taken as text, only while its form asks for it
            by_text = any(m["type"] == "from_text" and {"active_loop": form, "requested_slot": slot}
                          in m.get("conditions", []) for m in mappings)
            assert by_entity or by_text, (form, slot)
            asks = {f"utter_ask_{slot}", f"utter_ask_{form}_{slot}"}
            assert asks & set(DOMAIN["responses"]), (form, slot)


def test_slots_for_entities_and_session_config() -> None:
    assert set(DOMAIN["slots"]) >= ENTITIES
    assert DOMAIN["slots"]["confirm_cancel"]["type"] == "bool"
    assert DOMAIN["session_config"] == {
        "session_expiration_time": 60,
        "carry_over_slots_to_new_session": True,
    }


def test_the_training_data_loader_accepts_the_data_strictly() -> None:
    project = load_project(DATA, strict=True)
    assert project.warnings == []
    assert sorted(project.nlu.intents) == sorted(INTENTS)
    assert len(project.nlu.for_language("en").examples) == len(EXAMPLES)
    assert any(path.endswith("ivr.yml") for path in project.skipped_files)
