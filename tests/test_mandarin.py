"""Mandarin as a first-class language: the line's languages, parsing, the language menu, the text channel."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bot.dialogue.factory import build_engine
from bot.dialogue.settings import DialogueSettings
from bot.language import chinese_to_digits, detect_language, normalise_text
from bot.nlu import NLUEngine
from bot.training_data import load_nlu_text
from callpilot.app import create_app
from callpilot.settings import Settings, SettingsError

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "callpilot"]


@pytest.mark.parametrize(("text", "language"), [
    ("我要转人工", "zh"), ("where is my order", "en"), ("我要refund", "zh"), ("I want 人工服务", "zh"),
    ("48215", None), ("", None), ("🙂🙂", None), ("請問你們幾點開門", "zh"), ("ｈｅｌｌｏ", "en"),
])
def test_the_language_of_a_text_is_its_script(text: str, language: str | None) -> None:
    assert detect_language(text) == language


@pytest.mark.parametrize(("said", "digits"), [
    ("四八二一五", "48215"), ("四幺八七七", "41877"), ("四8二一5", "48215"), ("四三零二二九幺", "4302291"),
    ("洞洞七", "007"), ("十二月五号", "12月5号"), ("三百五十块", "350块"), ("两台冰箱", "2台冰箱"),
    ("等一下", "等一下"), ("三星电视", "三星电视"), ("万一坏了", "万一坏了"), ("下午三点", "下午3点"),
])
def test_chinese_numerals_become_digits(said: str, digits: str) -> None:
    assert chinese_to_digits(said) == digits


def test_traditional_and_full_width_text_is_folded_for_the_nlu() -> None:
    assert normalise_text("請問你們幾點開門", "zh") == "请问你们几点开门"
    assert normalise_text("訂單４８２１５", "zh") == "订单48215"


def test_the_chinese_model_parses_what_callers_say(nlu_engine: NLUEngine) -> None:
    assert nlu_engine.languages == ["en", "zh"]
    cases = {"我要转人工": "talk_to_human", "请问你们几点开门": "opening_hours", "我的洗衣机坏了": "technical_fault",
             "喂你好我想查一下我的订单四八二一五到哪了": "check_order_status", "退款什么时候到账": "refund_status"}
    for text, intent in cases.items():
        parsed = nlu_engine.parse(text)
        assert (parsed["language"], parsed["intent"]["name"]) == ("zh", intent), parsed
    order = nlu_engine.parse("喂你好我想查一下我的订单四八二一五到哪了")["entities"]
    assert [(e["entity"], e["value"]) for e in order] == [("order_number", "48215")]
    product = nlu_engine.parse("我的洗衣机坏了")["entities"]
    assert [(e["entity"], e["value"]) for e in product] == [("product", "washing machine")]


def test_the_chinese_model_is_accurate_on_its_held_out_split(nlu_engine: NLUEngine) -> None:
    held = load_nlu_text((ROOT / "held_out/zh/nlu.yml").read_text(encoding="utf-8"), "held_out/zh/nlu.yml")
    parsed = nlu_engine.parse_many([e.text for e in held.examples])
    assert {p["language"] for p in parsed} == {"zh"}
    right = sum(p["intent"]["name"] == e.intent for p, e in zip(parsed, held.examples, strict=True))
    assert right / len(held.examples) >= 0.88  # measured 0.923 (bench/results/nlu.json "zh")


def test_a_bare_number_keeps_the_conversations_language(nlu_engine: NLUEngine) -> None:
    assert nlu_engine.parse("48215", fallback="zh")["language"] == "zh"
    assert nlu_engine.parse("48215")["language"] == "en"
    assert nlu_engine.parse("我要转人工", language="en")["language"] == "en"  # an override wins


@pytest.fixture()
def client(nlu_engine: NLUEngine) -> TestClient:
    return TestClient(create_app(Settings.load(None, {}, data_dir=ROOT / "nlu_data"), engine=nlu_engine))


def test_parse_over_http_says_which_language_it_used(client: TestClient) -> None:
    detected = client.post("/model/parse", json={"text": "我要转人工"}).json()
    assert (detected["language"], detected["intent"]["name"]) == ("zh", "talk_to_human")
    assert client.post("/model/parse", json={"text": "where is my order"}).json()["language"] == "en"
    forced = client.post("/model/parse", json={"text": "48215", "language": "zh"}).json()
    assert forced["language"] == "zh"
    wrong = client.post("/model/parse", json={"text": "hi", "language": "fr"})
    assert wrong.status_code == 400 and "en, zh" in wrong.text


def test_the_rest_channel_answers_in_the_callers_language(client: TestClient) -> None:
    chinese = client.post("/webhooks/rest/webhook", json={"sender": "zh-web-1", "message": "你们几点开门"}).json()
    assert "周一到周六" in " ".join(m["text"] for m in chinese)
    english = client.post("/webhooks/rest/webhook", json={"sender": "zh-web-1", "message": "and your return policy?"})
    assert "30 days" in " ".join(m["text"] for m in english.json())


def test_parse_on_the_command_line_detects_or_takes_a_language(nlu_engine: NLUEngine) -> None:
    done = subprocess.run([*CLI, "parse", "-"], cwd=ROOT, input="我要转人工\nwhere is order 48215\n",
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["language"] for line in done.stdout.splitlines()] == ["zh", "en"]
    forced = subprocess.run([*CLI, "parse", "--language", "zh", "48215"], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert json.loads(forced.stdout)["language"] == "zh"
    bad = subprocess.run([*CLI, "parse", "--language", "fr", "hi"], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert bad.returncode != 0 and "--language" in bad.stderr


def test_the_lines_languages_are_a_setting() -> None:
    assert Settings.load(None, {}).languages == ["en", "zh"]
    line_400 = {"CALLPILOT_LANGUAGES": "zh,en", "CALLPILOT_ASR_ENGINE": "whisper-base"}
    assert Settings.load(None, line_400).languages == ["zh", "en"]
    with pytest.raises(SettingsError, match="needs a recogniser that hears it: asr_engine whisper-base"):
        Settings.load(None, {"CALLPILOT_LANGUAGES": "zh,en"})  # whisper-tiny.en hears no Mandarin
    with pytest.raises(SettingsError, match="languages"):
        Settings.load(None, {"CALLPILOT_LANGUAGES": "zh,fr"})
    with pytest.raises(SettingsError, match="twice"):
        Settings.load(None, {"CALLPILOT_LANGUAGES": "zh,zh"})


def _line(nlu_engine: NLUEngine, *languages: str):  # type: ignore[no-untyped-def]
    return build_engine(ROOT / "nlu_data", nlu_engine, now=lambda: 1.75e9,
                        settings=DialogueSettings(raise_errors=True, languages=languages))


def test_a_400_line_greets_in_chinese_and_a_silent_caller_hears_the_language_menu(nlu_engine: NLUEngine) -> None:
    engine = _line(nlu_engine, "zh", "en")
    greeting = engine.start("c1", "+8613812345678", "voice")
    assert greeting.language == "zh" and "您好" in greeting.text
    silence = engine.handle_no_input("c1")
    assert "中文服务请按1" in silence.text and "For English, press 2" in silence.text
    chosen = engine.handle_dtmf("c1", "2")
    assert chosen.language == "en" and not chosen.ivr_active
    assert "opening" not in chosen.text.lower() and chosen.text.isascii()
    hours = engine.handle_text("c1", "what are your opening hours")
    assert "Monday to Saturday" in hours.text
    # Keys after the language is known are the usual menu keys.
    menu = engine.handle_dtmf("c1", "1")
    assert menu.ivr_active and "status of an order" in menu.text


def test_the_language_menu_in_chinese_and_the_chinese_keypad_menus(nlu_engine: NLUEngine) -> None:
    engine = _line(nlu_engine, "zh", "en")
    engine.start("c2", "+8613812345678", "voice")
    engine.handle_no_input("c2")
    chinese = engine.handle_dtmf("c2", "1")
    assert chinese.language == "zh" and "请问" in chinese.text
    menu = engine.handle_dtmf("c2", "1")
    assert menu.ivr_active and "查询订单状态请按1" in menu.text
    # The menu is offered once, only to a caller who has said nothing.
    engine.start("c3", "+8613812345678", "voice")
    engine.handle_text("c3", "你好")
    assert "请按1" not in engine.handle_no_input("c3").text


def test_an_english_only_line_never_offers_a_language_menu(nlu_engine: NLUEngine) -> None:
    engine = _line(nlu_engine, "en")
    engine.start("c4", "+16175550142", "voice")
    assert "中文" not in engine.handle_no_input("c4").text
    assert engine.handle_text("c4", "hello").language == "en"
