"""The Chinese demo data (`nlu_data/zh/`, `held_out/zh/`) read through the project's own loader."""

from __future__ import annotations

import re
from pathlib import Path

from bot.backoffice import BackOffice
from bot.language import chinese_to_digits
from bot.training_data import load_nlu_text, load_project, validate_project

ROOT = Path(__file__).resolve().parent.parent
PROJECT = load_project(ROOT / "nlu_data")
ZH = PROJECT.nlu.for_language("zh")
EN = PROJECT.nlu.for_language("en")


def test_every_intent_has_colloquial_chinese_examples() -> None:
    counts = {intent: sum(e.intent == intent for e in ZH.examples) for intent in EN.intents}
    assert min(counts.values()) >= 20, counts
    texts = [e.text for e in ZH.examples]
    # Said the way callers speak on the phone: fillers, 幺 for 1, Chinese numerals in ids.
    for filler in ("喂", "那个", "就是说"):
        assert any(filler in t for t in texts), filler
    assert any("幺" in t for t in texts)
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in t) or t.isascii() for t in texts)


def test_spoken_chinese_ids_are_annotated_with_the_digits_the_normaliser_reads() -> None:
    spans = [(e.text[s.start:s.end], s) for e in ZH.examples for s in e.entities
             if s.entity in ("order_number", "repair_number")]
    assert len(spans) >= 20
    for said, span in spans:
        assert chinese_to_digits(said).upper() == span.value.upper(), (said, span.value)
        assert re.fullmatch(r"4\d{4,7}|R\d{6}", span.value), span.value


def test_chinese_products_and_cities_map_to_what_the_back_office_knows() -> None:
    office = BackOffice.demo()
    products = {s.value for e in ZH.examples for s in e.entities if s.entity == "product"}
    assert len(products) >= 8
    assert all(office.product(value) is not None for value in products), products
    cities = {s.value for e in ZH.examples for s in e.entities if s.entity == "city"}
    assert {"shanghai", "beijing", "boston"} <= cities
    assert all(value.isascii() for value in cities)  # canonical names: the store finder's


def test_chinese_regexes_find_ids_inside_chinese_text() -> None:
    regexes = {r.name: [re.compile(p) for p in r.patterns] for r in ZH.regexes}

    def found(name: str, text: str) -> list[str]:
        return [m.group() for p in regexes[name] for m in p.finditer(text)]

    assert found("order_number", "我的订单48215到哪了") == ["48215"]
    assert found("order_number", "订单号123456") == []
    assert found("repair_number", "维修单R104233怎么样了") == ["R104233"]
    assert found("phone_number", "我手机号是13812345678") == ["13812345678"]
    assert found("phone_number", "打我电话+86 138 1234 5678吧") == ["+86 138 1234 5678"]
    assert found("phone_number", "座机021-62345678") == ["021-62345678"]
    assert found("email", "发到zhang.wei@163.com就行") == ["zhang.wei@163.com"]


def test_every_response_and_menu_prompt_has_chinese_text() -> None:
    zh = PROJECT.domain.translations["zh"]
    assert set(zh) == set(PROJECT.domain.responses)
    problems = [p for p in validate_project(ROOT / "nlu_data") if "zh" in p.message or "/zh/" in p.location.path]
    assert problems == []


def test_the_held_out_chinese_split_is_never_trained_on() -> None:
    held = load_nlu_text((ROOT / "held_out/zh/nlu.yml").read_text(encoding="utf-8"), "held_out/zh/nlu.yml")
    trained = {e.text for e in ZH.examples}
    assert len(held.examples) >= 100
    assert not [e.text for e in held.examples if e.text in trained]
    assert {e.intent for e in held.examples} == set(EN.intents)
