"""The digit pass: an utterance with a number in it is decoded again, primed to write digits one by one; and one
digit looped by the short window ("6 6 6" for "six") is decoded on the 30 s window."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

from voice_gateway.asr.digit_pass import digit_count, looped_digit, primed_is_better, wants_digit_pass
from voice_gateway.asr.short_window import WindowPolicy
from voice_gateway.asr.whisper_engine import WhisperOptions, WhisperTranscriber, tiny_en_dir
from voice_gateway.testing import espeak, heard_by_recogniser, pause, to_pcm

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def test_digits_are_counted_as_numerals_and_words() -> None:
    assert digit_count("for 8 to 1 time") == 2
    assert digit_count("My order number is 48215.") == 5
    assert digit_count("four oh two") == 3
    assert digit_count("what are your opening hours") == 0


def test_only_english_utterances_with_two_digits_get_the_second_pass() -> None:
    assert wants_digit_pass("where in my order for 8 to 1 time", "en")
    assert not wants_digit_pass("four", "en")  # a one-digit answer: the prompt would make it "4 4 4"
    assert not wants_digit_pass("yes", "en")
    assert not wants_digit_pass("我的订单号是48215", "zh")  # the prompt is English


def test_the_primed_text_is_refused_when_it_parrots_the_prompt_or_repeats_itself() -> None:
    assert primed_is_better("where in my order for 8 to 1 time.", "Where in my order 4 8 2 1 5.")
    assert primed_is_better("Can you check order 4364699 please?", "Can you check order 4 36 4 6 9 please.")
    assert not primed_is_better("my order is 8 2", "My order number is 3 9 0 6 7.")
    assert not primed_is_better("Where's my order 48215?", "Where's my order 48215? Where's my order 48215?")
    assert not primed_is_better("1, 4, 3, 9, 1, 3", "1")
    assert not primed_is_better("Please cancel my Order 41,877.", "Please cancel my order 41 877.")  # same digits


def phone_line(samples_8k: np.ndarray) -> np.ndarray:
    """espeak-ng speech through 8 kHz mu-law, as the 16 kHz float samples the recogniser takes."""
    return heard_by_recogniser(to_pcm(samples_8k))


@pytest.fixture(scope="module")
def recognisers() -> dict[bool, WhisperTranscriber]:
    return {on: WhisperTranscriber.from_dir(tiny_en_dir(), WhisperOptions(window=WindowPolicy(), digit_pass=on))
            for on in (True, False)}


@pytest.mark.parametrize(("said", "digits"), [
    ("I'd like to cancel order four five one two zero please", "45120"),  # alone: "... order 4512 near Oak Lane."
    ("my order number is four one eight seven seven", "41877"),  # alone: "My order number in 4877"
])
def test_an_order_number_misheard_is_heard_digit_by_digit(recognisers: dict[bool, WhisperTranscriber], said: str,
                                                            digits: str) -> None:
    audio = phone_line(espeak(said))
    first = recognisers[False].transcribe(audio).text
    assert re.sub(r"\D", "", first) != digits, first
    assert re.sub(r"\D", "", recognisers[True].transcribe(audio).text) == digits


def test_utterances_without_a_number_are_left_alone(recognisers: dict[bool, WhisperTranscriber]) -> None:
    for said in ("yes", "what are your opening hours", "I want to talk to a real person please"):
        audio = phone_line(espeak(said))
        assert recognisers[True].transcribe(audio).text == recognisers[False].transcribe(audio).text


def test_one_digit_over_and_over_is_a_loop_to_check() -> None:
    assert looped_digit("3 3 3") and looped_digit("9, 9") and looped_digit("0 0.")
    assert not looped_digit("48215") and not looped_digit("4 8") and not looped_digit("3") and not looped_digit("")


@pytest.mark.parametrize(("said", "short_window", "digits"), [("six", "666", "6"), ("zero", "00", "0"),
                                                              ("four four", "44", "44")])
def test_a_digit_looped_on_the_short_window_is_heard_once(recognisers: dict[bool, WhisperTranscriber], said: str,
                                                          short_window: str, digits: str) -> None:
    """Half a second of the line's silence after the word, as the endpointer hands it over: the short window
    writes "6 6 6" for "six" and "0 0" for "zero"; "four four" stays two fours."""
    audio = phone_line(np.concatenate([espeak(said), pause(500)]))
    short = recognisers[True].short
    assert short is not None and re.sub(r"\D", "", short.decode(audio).text) == short_window
    assert re.sub(r"\D", "", recognisers[True].transcribe(audio).text) == digits
