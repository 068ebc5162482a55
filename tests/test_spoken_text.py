"""What the TTS engines are given to say: identifiers digit by digit in groups, amounts, dates and times in words;
and, through real engines and Whisper, that an order number is heard as digits, not as a quantity."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import resample_poly

from callpilot.voice import id_patterns
from tests.heard_tts import Heard
from voice_gateway.asr.whisper_engine import WhisperTranscriber, tiny_en_dir
from voice_gateway.tts import AudioChunk, EspeakTts, HibariTts, SentenceStreamer, TtsEngine
from voice_gateway.tts.spoken_text import digit_groups, languages, phone_groups, speakable
from voice_gateway.tts.streamer import spoken_form

ROOT = Path(__file__).resolve().parent.parent
NLU_IDS = tuple(id_patterns(ROOT / "nlu_data"))


def say(text: str) -> str:
    return speakable(text, id_patterns=NLU_IDS)


@pytest.mark.parametrize(("text", "spoken"), [
    # Order numbers (the NLU's order_number regex, and any run of 5+ digits)
    ("I couldn't find an order with the number 48213.",
     "I couldn't find an order with the number four eight two, one three."),
    ("Order 41877 left our warehouse.", "Order four one eight, seven seven left our warehouse."),
    ("Your order number is 4821356.", "Your order number is four eight two, one three five six."),
    # Letters joined to digits, repair numbers (also lower case, from the NLU's repair_number regex)
    ("Repair R123456 is ready.", "Repair R, one two three, four five six is ready."),
    ("Repair r123456 is ready.", "Repair R, one two three, four five six is ready."),
    ("tracking number BLF-48215.", "tracking number B L F, four eight two, one five."),
    ("I've opened ticket TCK-00012 for you.", "I've opened ticket T C K, zero zero zero, one two for you."),
    # A word that names an identifier before a shorter number
    ("Your PIN is 0420.", "Your PIN is zero four two zero."),
    ("Extension 204, please.", "Extension two zero four, please."),
    # Phone numbers: the country code, then the number as written or in the national grouping
    ("Call it on +16175550142.", "Call it on plus one, six one seven, five five five, zero one four two."),
    ("Call +44 20 7946 0958.", "Call plus four four, two zero, seven nine four six, zero nine five eight."),
    ("Or (617) 555-0142.", "Or six one seven, five five five, zero one four two."),
    # Postcodes
    ("Zip 02116.", "Zip zero two one, one six."),
    ("Send it to SW1A 1AA.", "Send it to S W one A, one A A."),
    # Amounts, percentages
    ("Your refund of $1,199.00 is on its way.",
     "Your refund of one thousand one hundred and ninety-nine dollars is on its way."),
    ("It costs $12.50 or £1.", "It costs twelve dollars and fifty cents or one pound."),
    ("Only $0.99.", "Only ninety-nine cents."),
    ("0% financing on orders above $499.", "zero percent financing on orders above four hundred and ninety-nine dollars."),
    # Dates and times
    ("It should ship by Tuesday June 3.", "It should ship by Tuesday June third."),
    ("Delivered on 2025-06-03.", "Delivered on June third, twenty twenty-five."),
    ("Booked for 3 June.", "Booked for June third."),
    ("Open from 9am to 8pm.", "Open from nine A M to eight P M."),
    ("The driver comes at 14:30 or 9:05 p.m.", "The driver comes at two thirty P M or nine oh five P M."),
    # Counts
    ("Return it within 30 days; 2-year warranty, 1,000 stores.",
     "Return it within thirty days; two-year warranty, one thousand stores."),
    ("Press 1 for orders, order 2 items, the 21st, 3.5 stars.",
     "Press one for orders, order two items, the twenty-first, three point five stars."),
])
def test_the_spoken_text(text: str, spoken: str) -> None:
    assert say(text) == spoken


def test_digit_groups_never_leave_one_digit_alone() -> None:
    assert [digit_groups("9" * n) for n in (4, 5, 6, 7, 8, 9, 10)] == [
        ["9999"], ["999", "99"], ["999", "999"], ["999", "9999"], ["9999", "9999"], ["999", "999", "999"],
        ["999", "999", "9999"]]
    assert phone_groups("+8613812345678") == ["86", "138", "1234", "5678"]  # a Chinese mobile: 138 1234 5678


def test_text_without_numbers_is_unchanged_and_the_language_is_checked() -> None:
    assert say("How can I help you today?") == "How can I help you today?"
    assert languages() == ("en", "zh")
    with pytest.raises(ValueError, match="no spoken-text reader for language 'xx': choose one of en, zh"):
        speakable("48213", language="xx")
    assert spoken_form("您好，请问有什么可以帮您？") == "您好，请问有什么可以帮您？"


@pytest.mark.parametrize(("text", "spoken"), [
    ("您的订单号是48213。", "您的订单号是四八二一三。"),  # an id digit by digit, inside Chinese text
    ("运单号是BLF-48215。", "运单号是BLF四八二一五。"),
    ("维修单R104233", "维修单R一零四二三三"),
    ("请拨打+86 138 1234 5678", "请拨打加八六，一三八，一二三四，五六七八"),
    ("早上8:00到晚上9点", "早上八点到晚上九点"),  # 8:00 as 八点
    ("下午2点30分", "下午两点半"),
    ("12月5日送到", "十二月五日送到"),
    ("满$499可以分期", "满四百九十九美元可以分期"),
    ("价格是¥1,299.50", "价格是一千二百九十九元五十分"),
    ("保修2年，打8折", "保修二年，打八折"),
    ("百分之：20%", "百分之：百分之二十"),
])
def test_chinese_is_read_the_chinese_way(text: str, spoken: str) -> None:
    assert spoken_form(text) == spoken
    assert spoken_form("order 48213", NLU_IDS) == "order four eight two, one three"


@pytest.fixture(scope="module")
def whisper() -> WhisperTranscriber:
    return WhisperTranscriber.from_dir(tiny_en_dir())


@pytest.mark.parametrize("make_engine", [HibariTts, EspeakTts], ids=["hibari", "espeak"])
def test_an_order_number_is_heard_as_digits_not_as_a_quantity(
    make_engine: type[TtsEngine], whisper: WhisperTranscriber
) -> None:
    engine = Heard(make_engine())
    streamer = SentenceStreamer(engine, id_patterns=NLU_IDS)

    async def speak() -> list[AudioChunk]:
        return [sentence.audio async for sentence in streamer.stream("Sorry. I couldn't find order 48213.")]

    _, second = asyncio.run(speak())
    assert engine.texts == ["Sorry.", "I couldn't find order four eight two, one three."]
    samples = second.as_array().astype(np.float32) / 32768
    heard = whisper.transcribe(resample_poly(samples, 16000, second.sample_rate).astype(np.float32)).text
    numbers = re.findall(r"\d+", heard)
    # Said as a quantity, Whisper writes one number ("48213", "48,213"); said digit by digit, several groups.
    assert "".join(numbers) == "48213" and len(numbers) >= 2, heard
    assert "hundred" not in heard.lower() and "thousand" not in heard.lower(), heard
