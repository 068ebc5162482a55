"""Tests for the Rasa YAML training-data loader and validator (`bot/training_data`)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from bot.training_data import (
    DataError,
    EntitySpan,
    Location,
    MarkupError,
    Problem,
    fingerprint,
    format_problems,
    load_domain_text,
    load_nlu_text,
    load_project,
    load_rules_text,
    load_texts,
    parse_markup,
    validate_project,
    validate_texts,
)

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"

DOMAIN = """\
version: "3.1"
intents:
  - greet
  - check_order_status
entities:
  - order_number
slots:
  order_number:
    type: text
    mappings:
    - type: from_entity
      entity: order_number
responses:
  utter_greet:
  - text: "Hello!"
  utter_ask_order_number:
  - text: "What is your order number?"
forms:
  order_form:
    required_slots:
      - order_number
actions:
  - action_check_order
"""

NLU = """\
version: "3.1"
nlu:
- intent: greet
  examples: |
    - hi
    - hello
    - good morning
    - hey there
    - good evening
- intent: check_order_status
  examples: |
    - where is my order
    - where's my order [48215](order_number)
    - status of order [41877](order_number)
    - has my order shipped
    - track my order
"""

RULES = """\
version: "3.1"
rules:
- rule: greet
  steps:
  - intent: greet
  - action: utter_greet
- rule: order
  steps:
  - intent: check_order_status
  - action: order_form
  - active_loop: order_form
  - action: action_check_order
"""


def problems(files: dict[str, str], **kwargs: int) -> list[str]:
    """Validate a project given as {path: text}; return `file:line: severity: message` lines."""
    return [str(p) for p in validate_texts(list(files.items()), "data", **kwargs)]


def project(**overrides: str) -> dict[str, str]:
    """The clean base project, with some files replaced."""
    files = {"data/domain.yml": DOMAIN, "data/nlu.yml": NLU, "data/rules.yml": RULES}
    files.update({f"data/{name}.yml": text for name, text in overrides.items()})
    return files


def test_base_project_is_clean() -> None:
    assert problems(project()) == []


# --- YAML and structure -------------------------------------------------------------------


def test_bad_yaml_reports_line_column_and_context() -> None:
    text = 'version: "3.1"\nnlu:\n- intent: greet\n  examples: [unclosed\n'
    assert problems({"data/nlu.yml": text}) == [
        (
            "data/nlu.yml:5: error: invalid YAML: did not find expected ',' or ']' (column 1), "
            "while parsing a flow sequence started on line 4"
        )
    ]


def test_tab_indentation_is_a_yaml_error_on_its_line() -> None:
    text = 'version: "3.1"\nnlu:\n- intent: greet\n\texamples: |\n    - hi\n'
    [message] = problems({"data/nlu.yml": text})
    assert message.startswith(
        "data/nlu.yml:4: error: invalid YAML: found a tab character"
    )


def test_duplicate_yaml_key_is_an_error() -> None:
    text = NLU.replace("- intent: greet\n", "- intent: greet\n  intent: hello\n")
    assert problems(project(nlu=text)) == [
        (
            "data/nlu.yml:4: error: key 'intent' appears twice in the same mapping "
            "(first on line 3); the second would silently win"
        )
    ]


def test_missing_version_warns_and_unsupported_version_errors() -> None:
    assert problems(project(nlu=NLU.replace('version: "3.1"\n', ""))) == [
        "data/nlu.yml:1: warning: no 'version' key; add version: \"3.1\""
    ]
    assert problems(project(nlu=NLU.replace('"3.1"', '"4.0"'))) == [
        'data/nlu.yml:1: error: unsupported version \'4.0\' (supported: "2.0", "3.0", "3.1")'
    ]
    assert problems(project(nlu=NLU.replace('"3.1"', "3.0"))) == [
        'data/nlu.yml:1: warning: write the version as a string: version: "3.0"'
    ]


def test_examples_must_be_a_block_string() -> None:
    text = 'version: "3.1"\nnlu:\n- intent: greet\n  examples: 5\n'
    assert problems({"data/nlu.yml": text}, min_examples=0)[0] == (
        "data/nlu.yml:4: error: examples of intent 'greet' must be a block string of "
        "'- ' lines (examples: |), not a number"
    )


def test_example_line_without_dash_is_an_error_on_its_line() -> None:
    text = NLU.replace("    - hey there\n", "    hey there\n")
    assert problems(project(nlu=text)) == [
        "data/nlu.yml:8: error: example line 'hey there' of intent 'greet' must start with '- '",
        "data/nlu.yml:3: error: intent 'greet' has only 4 example(s); at least 5 are needed",
    ]


def test_intent_key_missing_or_misspelled() -> None:
    text = NLU.replace("- intent: greet\n  examples", "- intnt: greet\n  examples")
    assert (
        "data/nlu.yml:3: error: nlu item needs exactly one of intent, synonym, regex, lookup "
        "(found none; keys: intnt, examples)" in problems(project(nlu=text))
    )
    text = NLU.replace("  examples: |\n    - hi", "  exampels: |\n    - hi")
    found = problems(project(nlu=text))
    assert (
        "data/nlu.yml:4: error: unknown key 'exampels' in intent item (allowed: examples, metadata)"
        in found
    )
    assert "data/nlu.yml:3: error: intent 'greet' has no 'examples:'" in found


def test_comment_line_inside_examples_block_warns() -> None:
    text = NLU.replace("    - hey there\n", "    # friendly\n    - hey there\n")
    assert problems(project(nlu=text)) == [
        (
            "data/nlu.yml:8: warning: '# friendly' inside the examples block of intent 'greet' "
            "is not a YAML comment and is ignored; move it above 'examples:'"
        )
    ]


def test_unknown_top_level_key_warns() -> None:
    text = NLU + "pipeline:\n  - name: x\n"
    assert problems(project(nlu=text)) == [
        "data/nlu.yml:17: warning: unknown top-level key 'pipeline' is ignored"
    ]


# --- NLU checks ---------------------------------------------------------------------------


def test_example_in_two_intents_names_both_places() -> None:
    chitchat = 'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - where\'s my order\n'
    orders = (
        'version: "3.1"\nnlu:\n- intent: check_order_status\n  examples: |\n'
        "    - where is my order\n    - Where's my  order\n"
    )
    found = problems(
        {
            "nlu_data/domain.yml": DOMAIN,
            "nlu_data/nlu/chitchat.yml": chitchat,
            "nlu_data/nlu/orders.yml": orders,
        },
        min_examples=1,
    )
    assert found[0] == (
        'nlu_data/nlu/orders.yml:6: error: example "Where\'s my  order" is in intent '
        "check_order_status and also in intent greet (nlu_data/nlu/chitchat.yml:5)"
    )


def test_same_example_twice_in_one_intent_warns() -> None:
    text = NLU.replace("    - good evening\n", "    - good evening\n    - Hello\n")
    assert problems(project(nlu=text)) == [
        'data/nlu.yml:10: warning: example "Hello" is listed twice in intent greet (first at data/nlu.yml:6)'
    ]


def test_undeclared_entity_in_annotation() -> None:
    text = NLU.replace(
        "    - track my order\n", "    - track my order to [Berlin](city)\n"
    )
    assert problems(project(nlu=text)) == [
        (
            "data/nlu.yml:16: error: entity 'city' is annotated in example \"track my order to Berlin\" "
            "but not declared under entities: in the domain"
        )
    ]


def test_intent_missing_from_domain_is_error_and_unused_domain_intent_warns() -> None:
    extra = "- intent: goodbye\n  examples: |\n" + "".join(
        f"    - bye {i}\n" for i in range(5)
    )
    domain = DOMAIN.replace("  - greet\n", "  - greet\n  - affirm\n")
    assert problems(project(nlu=NLU + extra, domain=domain)) == [
        "data/nlu.yml:17: error: intent 'goodbye' has NLU examples but is not listed under intents: in the domain",
        "data/domain.yml:4: warning: intent 'affirm' is listed in the domain but has no NLU examples",
    ]


def test_intent_with_too_few_examples() -> None:
    text = NLU.replace("    - good evening\n", "")
    assert problems(project(nlu=text)) == [
        "data/nlu.yml:3: error: intent 'greet' has only 4 example(s); at least 5 are needed"
    ]
    assert problems(project(nlu=text), min_examples=4) == []


def test_empty_examples_count_as_zero_and_empty_lookup_is_reported_once() -> None:
    text = 'version: "3.1"\nintents: [greet]\nnlu:\n- intent: greet\n  examples:\n- lookup: x\n  examples:\n'
    assert problems({"n.yml": text}) == [
        "n.yml:6: error: lookup table 'x' is empty",
        "n.yml:4: error: intent 'greet' has only 0 example(s); at least 5 are needed",
        "n.yml:2: warning: intent 'greet' is listed in the domain but has no NLU examples",
    ]


def test_invalid_regex_and_empty_lookup() -> None:
    text = (
        NLU
        + "- regex: order_number\n  examples: |\n    - \\b4[0-9]{4,7\\b\n    - (unclosed\n"
    )
    text += "- lookup: city\n  examples: |\n"
    assert problems(project(nlu=text)) == [
        (
            "data/nlu.yml:20: error: invalid regex pattern '(unclosed' in regex 'order_number': "
            "missing ), unterminated subpattern at position 0"
        ),
        "data/nlu.yml:21: error: lookup table 'city' is empty",
    ]


def test_synonym_variant_mapping_to_two_values() -> None:
    text = NLU + (
        "- synonym: refrigerator\n  examples: |\n    - fridge\n"
        "- synonym: freezer\n  examples: |\n    - Fridge\n"
    )
    assert problems(project(nlu=text)) == [
        "data/nlu.yml:22: error: synonym 'Fridge' maps to 'freezer' here but to 'refrigerator' in data/nlu.yml:19"
    ]


def test_annotation_value_conflicting_with_synonym_table() -> None:
    text = NLU.replace("[48215](order_number)", "[four eight](order_number:48)") + (
        "- synonym: '84'\n  examples: |\n    - four eight\n"
    )
    assert problems(project(nlu=text)) == [
        "data/nlu.yml:19: error: synonym 'four eight' maps to '84' here but to '48' in data/nlu.yml:13"
    ]


def test_bad_markup_in_example_names_line_and_reason() -> None:
    text = NLU.replace("[41877](order_number)", "[41877(order_number)")
    with pytest.raises(DataError) as caught:
        load_nlu_text(text, "data/nlu.yml")
    assert [str(p) for p in caught.value.problems] == [
        (
            'data/nlu.yml:14: error: bad entity markup in example "status of order [41877(order_number)": '
            "'[' at character 17 is never closed with ']'"
        )
    ]


# --- domain, rules and forms --------------------------------------------------------------


def test_response_used_in_rule_but_missing() -> None:
    rules = RULES.replace("  - action: utter_greet\n", "  - action: utter_welcome\n")
    assert problems(project(rules=rules)) == [
        (
            "data/rules.yml:6: error: response 'utter_welcome' used in rule 'greet' is missing from the domain "
            "(add it under responses:)"
        )
    ]


def test_action_used_in_rule_but_not_declared() -> None:
    domain = DOMAIN.replace("actions:\n  - action_check_order\n", "")
    assert problems(project(domain=domain)) == [
        (
            "data/rules.yml:12: error: action 'action_check_order' used in rule 'order' is not declared "
            "in the domain (add it under actions:)"
        )
    ]


def test_intent_and_slot_in_rules_must_be_declared() -> None:
    rules = (
        RULES
        + "- rule: bye\n  steps:\n  - intent: goodbye\n  - slot_was_set:\n    - mood: sad\n"
    )
    assert problems(project(rules=rules)) == [
        "data/rules.yml:15: error: intent 'goodbye' used in rule 'bye' is not listed under intents: in the domain",
        "data/rules.yml:16: error: slot 'mood' set in rule 'bye' is not declared under slots: in the domain",
    ]


def test_form_required_slot_not_declared_and_ask_response_missing() -> None:
    domain = DOMAIN.replace(
        "      - order_number\n", "      - order_number\n      - email\n"
    )
    domain = domain.replace(
        '  utter_ask_order_number:\n  - text: "What is your order number?"\n', ""
    )
    assert problems(project(domain=domain)) == [
        (
            "data/domain.yml:17: error: form 'order_form' cannot ask for slot 'order_number': response "
            "'utter_ask_order_number' (or 'utter_ask_order_form_order_number') is missing from the domain"
        ),
        "data/domain.yml:17: error: form 'order_form' requires slot 'email' which is not declared under slots:",
    ]


def test_slot_mapping_from_undeclared_entity() -> None:
    domain = DOMAIN.replace("      entity: order_number\n", "      entity: order_id\n")
    assert problems(project(domain=domain)) == [
        (
            "data/domain.yml:8: error: slot 'order_number' is filled from entity 'order_id' which is not declared "
            "under entities:"
        )
    ]


def test_domain_type_errors_have_lines() -> None:
    text = (
        'version: "3.1"\nslots:\n  mood:\n    type: feelings\n  age:\n    type: float\n'
        "responses:\n  utter_hi: hello\n"
    )
    with pytest.raises(DataError) as caught:
        load_domain_text(text, "d.yml")
    assert [str(p) for p in caught.value.problems] == [
        "d.yml:4: error: slot 'mood' has unknown type 'feelings' (use one of any, bool, categorical, float, list, text)",
        "d.yml:3: error: slot 'mood' has no 'mappings' (required since Rasa 3.0; use '- type: custom' if an action sets it)",
        "d.yml:5: error: slot 'age' has no 'mappings' (required since Rasa 3.0; use '- type: custom' if an action sets it)",
        "d.yml:8: error: response 'utter_hi' must be a non-empty list of variants ('- text: ...')",
    ]


def test_rule_step_errors() -> None:
    text = 'version: "3.1"\nrules:\n- rule: r\n  steps:\n  - intent: greet\n    action: utter_greet\n  - say: hi\n'
    with pytest.raises(DataError) as caught:
        load_rules_text(text, "r.yml")
    assert [str(p) for p in caught.value.problems] == [
        "r.yml:5: error: step of rule 'r' has several of intent, action; split it into steps",
        (
            "r.yml:7: error: step of rule 'r' needs one of intent, user, action, bot, active_loop, "
            "slot_was_set, checkpoint, or (found say)"
        ),
    ]


def test_domain_files_merge_like_rasa_first_definition_wins() -> None:
    second = 'version: "3.1"\nintents:\n  - greet\nresponses:\n  utter_greet:\n  - text: "Hi again"\n'
    found = problems(project(domain_extra=second))
    assert found == [
        (
            "data/domain_extra.yml:5: warning: response 'utter_greet' is already defined in data/domain.yml:14; "
            "this definition is ignored"
        )
    ]
    loaded = load_texts(list(project(domain_extra=second).items()))
    assert loaded.domain.responses["utter_greet"].variants[0].text == "Hello!"
    assert loaded.domain.intents == ["greet", "check_order_status"]


def test_domain_details_load() -> None:
    domain = load_domain_text((DATA / "rich/domain/forms.yml").read_text(), "forms.yml")
    seat = domain.slots["seat"]
    assert seat.values == ("window", "aisle", "no")  # YAML 1.2: `no` stays a string
    assert seat.mappings[0].not_intent == ("greet",)
    assert domain.slots["city"].mappings[0].active_loop == "trip_form"
    assert domain.slots["count"].influence_conversation is False
    assert domain.forms["trip_form"].required_slots == ("city", "count")
    assert domain.actions == ["action_book_trip", "action_check_seat"]


def test_rules_and_stories_load() -> None:
    rules = load_rules_text((DATA / "rich/data/rules.yml").read_text(), "rules.yml")
    submit = rules[2]
    assert (submit.name, submit.wait_for_user_input, submit.is_story) == (
        "submit trip form",
        False,
        False,
    )
    assert submit.condition[0].active_loop == "trip_form"
    assert [s.active_loop for s in submit.steps] == [None, "null", None, None]
    assert submit.steps[2].slot_was_set == (("requested_slot", None),)
    assert rules[3].conversation_start is True
    stories = load_rules_text(
        (DATA / "rich/data/stories.yml").read_text(), "stories.yml"
    )
    story = stories[1]
    assert story.is_story and story.steps[0].checkpoint == "greeted"
    assert [a.entities for a in story.steps[1].alternatives] == [
        (("city", "Paris"),),
        (),
    ]
    assert story.steps[4].slot_was_set == (("city", "Paris"), ("count", None))
    assert story.steps[4].location.line == 20


# --- markup -------------------------------------------------------------------------------


def test_markup_short_forms() -> None:
    assert parse_markup("book [two](count:2) tickets to [Paris](city)") == (
        "book two tickets to Paris",
        [EntitySpan(5, 8, "count", "2"), EntitySpan(20, 25, "city", "Paris")],
    )
    assert parse_markup("no entities (really)") == ("no entities (really)", [])


def test_markup_dict_form_with_role_value_and_group() -> None:
    text = 'from [Berlin]{"entity": "city", "role": "departure"} to [NYC]{"entity": "city", "value": "New York", "role": "destination", "group": "1"}'
    assert parse_markup(text) == (
        "from Berlin to NYC",
        [
            EntitySpan(5, 11, "city", "Berlin", role="departure"),
            EntitySpan(15, 18, "city", "New York", role="destination", group="1"),
        ],
    )


def test_markup_list_form_gives_several_entities_for_one_text() -> None:
    plain, spans = parse_markup(
        'a [red]{"entity": "colour"} [t-shirt][{"entity": "item"}, {"entity": "product", "value": "shirt"}]'
    )
    assert plain == "a red t-shirt"
    assert spans[1:] == [
        EntitySpan(6, 13, "item", "t-shirt"),
        EntitySpan(6, 13, "product", "shirt"),
    ]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("call [me", "'[' at character 6 is never closed with ']'"),
        ("call me]", "']' at character 8 has no matching '['"),
        (
            "press [1] now",
            "'[1]' has no entity after it: write [1](entity_name) or remove the brackets",
        ),
        ("go to [Rome](city", "'(' after '[Rome]' is never closed with ')'"),
        ("go to [Rome]()", "'[Rome]()' has an empty entity name"),
        (
            "go to [Rome](home city)",
            "'[Rome](home city)': entity name 'home city' must not contain spaces, quotes or brackets",
        ),
        ("go to [Rome](city:)", "'[Rome](city:)' has an empty value after ':'"),
        ("go [a [b](x)](y)", "'[' at character 4 contains another '[' (nested)"),
        ("go to []()", "empty entity text '[]' at character 7"),
        (
            'go to [Rome]{"entity": city}',
            (
                "'[Rome]{\"entity\": city}' is not valid JSON: Expecting value (character 12); "
                'expected e.g. {"entity": "city", "role": "destination"}'
            ),
        ),
        ('go to [Rome]{"role": "to"}', '\'[Rome]{"role": "to"}\' has no "entity" key'),
        (
            'go to [Rome]{"entity": "city", "rol": "to"}',
            '\'[Rome]{"entity": "city", "rol": "to"}\' has unknown key(s) rol (allowed: entity, value, role, group)',
        ),
    ],
)
def test_bad_markup_is_an_error_with_a_clear_reason(text: str, reason: str) -> None:
    with pytest.raises(MarkupError) as caught:
        parse_markup(text)
    assert str(caught.value) == reason


# --- Rasa 3 example forms -----------------------------------------------------------------


def test_list_of_dicts_examples_with_metadata_and_multiline_text() -> None:
    data = load_nlu_text((DATA / "rich/data/nlu.yml").read_text(), "nlu.yml")
    greet = [(e.text, e.location.line) for e in data.examples if e.intent == "greet"]
    assert greet == [
        ("hello there", 17),
        ("good morning", 21),
        ("hi, is anyone there?", 22),
        ("hey", 23),
        ("hiya", 24),
    ]
    assert data.intent_locations["book_trip"].line == 5
    assert [s.examples for s in data.synonyms] == [("NYC", "the big apple")]
    assert data.regexes[0].patterns == ("\\b[0-9]{1,2}\\b",)
    assert data.lookups[0].elements == ("Berlin", "Paris", "Rome")
    assert data.full_synonym_map()["la"] == "Los Angeles"


def test_listed_examples_may_not_mix_plain_strings() -> None:
    text = (
        'version: "3.1"\nnlu:\n- intent: greet\n  examples:\n  - text: hi\n  - hello\n'
    )
    with pytest.raises(DataError) as caught:
        load_nlu_text(text, "n.yml")
    assert (
        str(caught.value)
        == "n.yml:6: error: listed examples of intent 'greet' must all be '- text: ...' mappings, not a string"
    )


def test_rich_sample_project_is_clean() -> None:
    assert validate_project(DATA / "rich") == []
    loaded = load_project(DATA / "rich", strict=True)
    assert loaded.domain.session_config.session_expiration_time == 30.0
    assert sorted(loaded.domain.responses) == [
        "utter_ask_city",
        "utter_ask_count",
        "utter_confirm",
        "utter_faq/opening_hours",
        "utter_greet",
    ]


# --- projects on disk ---------------------------------------------------------------------


def test_rasa_init_project_loads_unchanged() -> None:
    loaded = load_project(DATA / "rasa_init")
    root = (DATA / "rasa_init").as_posix()
    assert loaded.files == [
        f"{root}/data/nlu.yml",
        f"{root}/data/rules.yml",
        f"{root}/data/stories.yml",
        f"{root}/domain.yml",
    ]
    assert loaded.skipped_files == [
        f"{root}/config.yml",
        f"{root}/credentials.yml",
        f"{root}/endpoints.yml",
        f"{root}/tests/test_stories.yml",
    ]
    assert len(loaded.nlu.intents) == 7 and len(loaded.domain.intents) == 7
    assert len(loaded.nlu.examples) == 68
    assert len(loaded.domain.responses) == 6
    assert sum(r.is_story for r in loaded.rules) == 3
    assert sum(not r.is_story for r in loaded.rules) == 2
    assert loaded.warnings == []


def test_rasa_init_fails_only_our_minimum_example_rule() -> None:
    found = validate_project(DATA / "rasa_init")
    assert [
        (p.location.path.endswith("data/nlu.yml"), p.location.line, p.message)
        for p in found
    ] == [
        (
            True,
            86,
            "intent 'bot_challenge' has only 4 example(s); at least 5 are needed",
        )
    ]
    assert validate_project(DATA / "rasa_init", min_examples=4) == []


def test_load_project_raises_with_every_error_and_skips_non_rasa_files(
    tmp_path: Path,
) -> None:
    (tmp_path / "nlu").mkdir()
    (tmp_path / "nlu" / "a.yml").write_text(
        'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - [hi\n'
    )
    (tmp_path / "nlu" / "b.yaml").write_text('version: "9"\nnlu: []\n')
    (tmp_path / "ivr.yml").write_text('version: "1"\nivr:\n  start: main\n')
    (tmp_path / "domain.yml").write_text("intents: [greet]\n")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "x.yml").write_text("nlu: [")
    with pytest.raises(DataError) as caught:
        load_project(tmp_path)
    root = tmp_path.as_posix()
    assert [str(p) for p in caught.value.problems] == [
        f"{root}/nlu/a.yml:5: error: bad entity markup in example \"[hi\": '[' at character 1 is never closed with ']'",
        f'{root}/nlu/b.yaml:1: error: unsupported version \'9\' (supported: "2.0", "3.0", "3.1")',
    ]


def test_load_project_of_missing_or_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="data directory not found"):
        load_project(tmp_path / "nope")
    (tmp_path / "config.yml").write_text("language: en\n")
    with pytest.raises(DataError, match="no Rasa training data found"):
        load_project(tmp_path)


def test_validate_project_of_missing_directory(tmp_path: Path) -> None:
    assert [str(p) for p in validate_project(tmp_path / "nope")] == [
        f"{(tmp_path / 'nope').as_posix()}: error: data directory not found"
    ]


def test_strict_load_raises_on_validation_errors() -> None:
    with pytest.raises(DataError, match="intent 'bot_challenge' has only 4 example"):
        load_project(DATA / "rasa_init", strict=True)


def test_real_nlu_data_loads_and_validates() -> None:
    nlu_dir = REPO / "nlu_data"
    loaded = load_project(nlu_dir)
    assert (nlu_dir / "ivr.yml").as_posix() in loaded.skipped_files or not (
        nlu_dir / "ivr.yml"
    ).exists()
    assert loaded.nlu.examples and loaded.domain.intents and loaded.rules
    errors = [p for p in validate_project(nlu_dir) if p.severity == "error"]
    assert errors == [], format_problems(errors)


# --- fingerprint and formatting -----------------------------------------------------------


def test_fingerprint_ignores_layout_comments_and_file_order() -> None:
    base = fingerprint(load_texts(list(project().items())))
    greet, orders = NLU.split("- intent: check_order_status\n")
    reshuffled = {
        "data/domain.yml": DOMAIN,
        "data/rules.yml": RULES,
        "data/a_orders.yml": 'version: "3.1"\n# orders first\nnlu:\n\n- intent: check_order_status\n'
        + orders.replace("    - ", "    -   "),
        "data/z_greet.yml": greet.replace(
            "    - hi\n    - hello\n", "    - hello\n    - hi   \n"
        ),
    }
    assert fingerprint(load_texts(list(reshuffled.items()))) == base
    changed = project(nlu=NLU.replace("track my order", "track my parcel"))
    assert fingerprint(load_texts(list(changed.items()))) != base
    relabelled = project(nlu=NLU.replace("[41877](order_number)", "41877"))
    assert fingerprint(load_texts(list(relabelled.items()))) != base


def test_fingerprint_merges_synonyms_split_across_entries() -> None:
    one = NLU + "- synonym: tv\n  examples: |\n    - telly\n    - television\n"
    two = (
        NLU
        + "- synonym: tv\n  examples: |\n    - television\n- synonym: tv\n  examples: |\n    - telly\n"
    )
    assert fingerprint(load_nlu_text(one, "a.yml")) == fingerprint(
        load_nlu_text(two, "b.yml")
    )
    assert fingerprint(load_nlu_text(one, "a.yml")) != fingerprint(
        load_nlu_text(NLU, "a.yml")
    )


def test_format_problems_sorts_and_summarises() -> None:
    found = [
        Problem(Location("b.yml", 3), "second"),
        Problem(Location("a.yml", 9), "first", "warning"),
    ]
    assert (
        format_problems(found)
        == "a.yml:9: warning: first\nb.yml:3: error: second\n1 error, 1 warning"
    )
    assert format_problems([]) == "no problems found"


# --- compatibility with the real Rasa -----------------------------------------------------

_RASA_DUMP = """
import json, logging, sys
logging.disable(logging.WARNING)
from rasa.shared.importers.importer import TrainingDataImporter
imp = TrainingDataImporter.load_from_dict(config={"recipe": "default.v1", "language": "en"},
    config_path=None, domain_path=sys.argv[2], training_data_paths=[sys.argv[1]])
nlu = imp.get_nlu_data()
print(json.dumps({
    "examples": sorted([m.get("text"), m.get("intent"), sorted([e["start"], e["end"], e["entity"], str(e["value"]),
        e.get("role") or "", e.get("group") or ""] for e in m.get("entities", []))] for m in nlu.intent_examples),
    "synonyms": {k.lower(): v for k, v in nlu.entity_synonyms.items()},
    "responses": sorted(imp.get_domain().responses),
    "story_blocks": len(imp.get_stories().story_steps),
}))
"""


@pytest.mark.parametrize(
    ("root", "data", "domain"),
    [
        ("rasa_init", "data", "domain.yml"),
        ("rich", "data", "domain"),
        ("nlu_data", "nlu_data", "nlu_data/domain.yml"),
    ],
)
def test_loader_agrees_with_real_rasa(
    root: str, data: str, domain: str, tmp_path: Path
) -> None:
    rasa_python = REPO / ".rasa-venv" / "bin" / "python"
    if not rasa_python.exists():
        pytest.skip("no Rasa 3.6 install in .rasa-venv to compare against")
    base = REPO if root == "nlu_data" else DATA / root
    if root == "nlu_data":
        shutil.copytree(REPO / "nlu_data", tmp_path / "nlu_data")
        base = tmp_path
    out = subprocess.run(
        [str(rasa_python), "-c", _RASA_DUMP, str(base / data), str(base / domain)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        cwd=tmp_path,
    )
    rasa = json.loads(out.stdout.strip().splitlines()[-1])
    loaded = load_project(base / data if root == "nlu_data" else base)
    mine = sorted(
        [
            e.text,
            e.intent.split("/")[0],
            sorted(
                [s.start, s.end, s.entity, s.value, s.role or "", s.group or ""]
                for s in e.entities
            ),
        ]
        for e in loaded.nlu.examples
    )
    assert mine == rasa["examples"]
    assert loaded.nlu.full_synonym_map() == rasa["synonyms"]
    assert sorted(loaded.domain.responses) == rasa["responses"]
    if not any(
        step.checkpoint or step.alternatives
        for rule in loaded.rules
        for step in rule.steps
    ):
        assert (
            len(loaded.rules) == rasa["story_blocks"]
        )  # Rasa splits stories at checkpoints and `or`
