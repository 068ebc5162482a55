"""IVR menus as phone conversations: keys and silences in, prompts and outcomes out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.ivr import (
    BackToSpeech,
    GoIntent,
    Handoff,
    HangUp,
    IllegalIvrTransition,
    IvrConfig,
    IvrEngine,
    IvrResult,
    IvrState,
    Outcome,
    SayResponse,
    StateMismatch,
    UnknownMenu,
    check_against_domain,
    load_ivr,
    load_ivr_text,
)
from bot.ivr.transitions import (
    TRANSITIONS,
    InputKind,
    Mode,
    check_next_mode,
    mermaid,
    transition_for,
)
from bot.training_data.model import DataError, Domain, Response, ResponseVariant, Slot

DEMO = Path(__file__).resolve().parent.parent / "nlu_data" / "ivr.yml"
SORRY = "Sorry, that is not a valid choice."
SILENCE = "Sorry, I didn't hear a key press."
ORDER_PROMPT = "Please enter your order number followed by the hash key."


class Call:
    """One simulated caller on the keypad, keeping the state like the dialogue engine would."""

    def __init__(self, config: IvrConfig, state: IvrState | None = None) -> None:
        self.engine = IvrEngine(config)
        self.state = state or IvrState()
        self.last = IvrResult()

    def enter(self, menu: str | None = None, reason: str = "") -> Call:
        self.last = self.engine.enter(self.state, menu, reason)
        return self

    def press(self, keys: str) -> Call:
        self.last = self.engine.press(self.state, keys)
        return self

    def silence(self) -> Call:
        self.last = self.engine.timeout(self.state)
        return self

    def hears(self, *fragments: str) -> Call:
        """Each fragment is in its own prompt, in this order, and nothing else is said."""
        assert len(self.last.prompts) == len(fragments), self.last.prompts
        for prompt, fragment in zip(self.last.prompts, fragments, strict=False):
            assert fragment in prompt, (fragment, prompt)
        return self

    def gets(self, outcome: Outcome | None) -> Call:
        assert self.last.outcome == outcome
        return self


@pytest.fixture(scope="module")
def demo() -> IvrConfig:
    return load_ivr(DEMO)


@pytest.fixture
def call(demo: IvrConfig) -> Call:
    return Call(demo).enter()


# Menus


def test_enter_says_the_main_menu_and_waits(call: Call) -> None:
    call.hears("For orders and delivery, press 1").gets(None)
    assert call.last.timeout_seconds == 6.0
    assert call.state.active and call.state.path == ["main"]


def test_a_digit_opens_the_sub_menu(call: Call) -> None:
    call.press("1").hears("For the status of an order, press 1").gets(None)
    assert call.state.menu == "orders" and call.state.path == ["main", "1:orders"]


def test_star_repeats_the_current_menu(call: Call) -> None:
    call.press("1").press("*").hears("For the status of an order, press 1")
    assert call.state.menu == "orders"


def test_hash_goes_back_and_repeats_at_the_top(call: Call) -> None:
    call.press("3").press("#").hears("For orders and delivery, press 1")
    assert call.state.path == ["main"]
    call.press("#").hears("For orders and delivery, press 1")
    assert call.state.menu == "main"


def test_invalid_key_apologises_and_reprompts(call: Call) -> None:
    call.press("1").press("7").hears(SORRY, "For the status of an order").gets(None)
    assert call.state.retries == 1


def test_max_retries_hands_off(call: Call) -> None:
    call.press("4").press("7").press("8")
    call.press("6").hears(SORRY, "put you through").gets(
        Handoff("general", "no valid input after 3 tries in menu billing")
    )
    assert not call.state.active and call.last.ended


def test_a_valid_choice_resets_the_retries(call: Call) -> None:
    call.press("7").press("7").press("1").press("7").hears(SORRY, "For the status of an order")
    assert call.state.retries == 1


def test_zero_asks_for_an_agent_of_the_menus_skill(call: Call) -> None:
    call.press("3").press("0").hears("connect you to an agent")
    call.gets(Handoff("tech", "caller pressed 0 for an agent in menu repairs"))
    Call(call.engine.config).enter("stores").press("0").gets(
        Handoff("general", "caller pressed 0 for an agent in menu stores")
    )


def test_zero_defined_by_the_menu_wins(call: Call) -> None:
    call.press("0").gets(Handoff("general", "caller pressed 0 in menu main"))


def test_option_handoff_intent_speech(call: Call) -> None:
    call.press("3").press("2").hears("technical support team").gets(
        Handoff("tech", "caller pressed 2 in menu repairs")
    )
    call.enter().press("1").press("2").hears().gets(GoIntent("delivery_time", {}))
    call.enter().press("9").hears("how can I help").gets(BackToSpeech())
    assert not call.state.active


def test_response_is_said_and_the_menu_stays(call: Call) -> None:
    call.press("2").press("1").hears("For our return policy").gets(SayResponse("utter_return_policy"))
    assert call.state.active and call.state.menu == "returns"
    assert call.last.timeout_seconds == 6.0


def test_enter_at_a_sub_menu_knows_its_parent(demo: IvrConfig) -> None:
    call = Call(demo).enter("repairs", reason="asr_failed")
    call.hears("To track a repair, press 1")
    assert call.state.path == ["main", "3:repairs"] and call.state.reason == "asr_failed"
    call.press("#").hears("For orders and delivery")


# Collecting numbers


def test_collect_order_number_then_intent(call: Call) -> None:
    call.press("1").press("1").hears(ORDER_PROMPT)
    assert call.state.mode is Mode.COLLECT
    assert call.state.path == ["main", "1:orders", "1:collect order_number"]
    call.press("48215#").hears().gets(GoIntent("check_order_status", {"order_number": "48215"}))
    assert call.last.timeout_seconds is None and not call.state.active


def test_digits_one_by_one_are_buffered_silently(call: Call) -> None:
    call.press("1").press("1")
    for digit in "482":
        call.press(digit).hears().gets(None)
    assert call.state.digits == "482" and call.last.timeout_seconds == 6.0


def test_too_few_digits_reprompts_then_accepts(call: Call) -> None:
    call.press("1").press("1").press("123#").hears("5 to 8 digits", ORDER_PROMPT).gets(None)
    assert call.state.digits == "" and call.state.retries == 1
    call.press("48215#").gets(GoIntent("check_order_status", {"order_number": "48215"}))


def test_too_few_digits_three_times_hands_off(call: Call) -> None:
    call.press("11").press("1#").press("12#").press("123#").gets(
        Handoff("general", "no valid input after 3 tries in menu orders")
    )


def test_max_digits_submits_without_hash(call: Call) -> None:
    call.press("1").press("1").press("12345678").gets(
        GoIntent("check_order_status", {"order_number": "12345678"})
    )


def test_star_clears_the_number_and_zero_is_a_digit(call: Call) -> None:
    call.press("11").press("999*").hears(ORDER_PROMPT)
    call.press("10203#").gets(GoIntent("check_order_status", {"order_number": "10203"}))


def test_bare_hash_cancels_the_number(call: Call) -> None:
    call.press("11").press("#").hears("For the status of an order")
    assert call.state.mode is Mode.MENU and call.state.path == ["main", "1:orders"]


def test_repair_number_gets_its_prefix(call: Call) -> None:
    call.press("3").press("1").hears("six digits of your repair number")
    call.press("123456").gets(GoIntent("track_repair", {"repair_number": "R123456"}))


def test_refund_status_collects_an_order_number(call: Call) -> None:
    call.press("2").press("2").press("7654321#").gets(GoIntent("refund_status", {"order_number": "7654321"}))


def test_enter_again_forgets_old_slots(call: Call) -> None:
    call.press("11").press("48215#")
    call.enter().press("1").press("2").gets(GoIntent("delivery_time", {}))


# Timeouts (reported by the caller; the engine has no clock)


def test_silence_reprompts_then_hands_off(call: Call) -> None:
    call.silence().hears(SILENCE, "For orders and delivery").gets(None)
    call.silence().hears(SILENCE, "For orders and delivery")
    call.silence().hears(SILENCE, "put you through").gets(
        Handoff("general", "no valid input after 3 tries in menu main")
    )


def test_silence_and_invalid_keys_share_the_retry_count(call: Call) -> None:
    call.press("5").silence().press("7").press("7").gets(
        Handoff("general", "no valid input after 3 tries in menu stores")
    )


def test_silence_after_digits_takes_the_number(call: Call) -> None:
    call.press("11").press("48215").silence().gets(GoIntent("check_order_status", {"order_number": "48215"}))


def test_silence_in_an_empty_collect_reprompts_it(call: Call) -> None:
    call.press("11").silence().hears(SILENCE, ORDER_PROMPT)
    assert call.state.mode is Mode.COLLECT


# Several keys at once, state persistence, illegal input


def test_several_keys_are_processed_in_order(call: Call) -> None:
    call.press("11").hears("For the status of an order", ORDER_PROMPT)
    assert call.state.mode is Mode.COLLECT


def test_keys_after_an_outcome_are_discarded(call: Call) -> None:
    call.press("1248215#").hears("For the status of an order").gets(GoIntent("delivery_time", {}))
    assert call.state.digits == "" and not call.state.active


def test_state_round_trips_through_json_mid_collect(demo: IvrConfig) -> None:
    first = Call(demo).enter().press("1").press("1").press("482")
    saved = json.dumps(first.state.to_dict())
    restored = IvrState.from_dict(json.loads(saved))
    assert restored == first.state and restored.to_dict()["active"] is True
    Call(demo, restored).press("15#").gets(GoIntent("check_order_status", {"order_number": "48215"}))


def test_a_saved_state_that_no_longer_fits_the_menus_is_refused(demo: IvrConfig) -> None:
    stale = IvrState.from_dict({"mode": "collect", "menu": "orders", "path": ["main"], "collect_key": "7"})
    with pytest.raises(StateMismatch, match="no collect at key '7'"):
        IvrEngine(demo).press(stale, "4")


def test_enter_mid_collect_abandons_the_number(call: Call) -> None:
    call.press("11").press("482").enter("billing").hears("For payment methods")
    assert (
        call.state.mode is Mode.MENU and call.state.digits == "" and call.state.path == ["main", "4:billing"]
    )


def test_keys_while_idle_are_illegal(demo: IvrConfig) -> None:
    engine = IvrEngine(demo)
    with pytest.raises(IllegalIvrTransition):
        engine.press(IvrState(), "1")
    with pytest.raises(IllegalIvrTransition):
        engine.timeout(IvrState())


def test_bad_keys_are_rejected_before_anything_happens(call: Call) -> None:
    before = call.state.to_dict()
    for keys in ("1A", "", "x"):
        with pytest.raises(ValueError):
            call.press(keys)
    assert call.state.to_dict() == before


def test_unknown_menu(call: Call) -> None:
    with pytest.raises(UnknownMenu):
        call.enter("nowhere")
    assert call.state.menu == "main"


def test_transition_table_is_complete_and_strict() -> None:
    for mode in Mode:
        for kind in InputKind:
            if (mode, kind) in TRANSITIONS:
                assert transition_for(mode, kind).next_modes
            else:
                assert mode is Mode.IDLE and kind is not InputKind.ENTER
                with pytest.raises(IllegalIvrTransition):
                    transition_for(mode, kind)
    assert "idle --> menu: enter / enter_menu" in mermaid()
    silence_in_menu = transition_for(Mode.MENU, InputKind.TIMEOUT)
    with pytest.raises(IllegalIvrTransition, match="no_input ended in collect"):
        check_next_mode(silence_in_menu, Mode.MENU, InputKind.TIMEOUT, Mode.COLLECT)


# Inline configurations for behaviour the demo does not use

SMALL = """\
version: "1"
ivr:
  start: top
  defaults: {max_retries: 2, on_max_retries: {menu: top, prompt: "Let's start again."}}
  menus:
    top:
      prompt: "Top menu."
      options:
        "1": {menu: account}
        "8": {hangup: true, prompt: "Goodbye."}
    account:
      prompt: "Account menu."
      timeout: 10
      options:
        "1":
          collect:
            slot: customer_number
            prompt: "Customer number?"
            min_digits: 4
            max_digits: 4
            then:
              collect: {slot: pin, prompt: "PIN?", min_digits: 4, max_digits: 4, then: {intent: account_balance}}
"""


def test_hangup_says_goodbye() -> None:
    Call(load_ivr_text(SMALL)).enter().press("8").hears("Goodbye.").gets(HangUp())


def test_on_max_retries_can_restart_at_a_menu() -> None:
    call = Call(load_ivr_text(SMALL)).enter().press("1").press("5")
    assert call.last.timeout_seconds == 10.0
    call.press("5").hears(SORRY, "start again", "Top menu.").gets(None)
    assert call.state.path == ["top"] and call.state.retries == 0


def test_chained_collects_fill_both_slots() -> None:
    call = Call(load_ivr_text(SMALL)).enter().press("1").press("1").press("1234").hears("PIN?")
    assert call.state.path == ["top", "1:account", "1:collect customer_number", "1:collect pin"]
    restored = Call(load_ivr_text(SMALL), IvrState.from_dict(json.loads(json.dumps(call.state.to_dict()))))
    restored.press("99*").hears("PIN?")
    restored.press("4321").gets(GoIntent("account_balance", {"customer_number": "1234", "pin": "4321"}))
    assert restored.state.path == ["top", "1:account"]


# Loading: every problem names file:line


def problems(text: str) -> list[str]:
    with pytest.raises(DataError) as caught:
        load_ivr_text(text, "nlu_data/ivr.yml")
    return [str(p) for p in caught.value.problems]


def ivr(menus: str, start: str = "main") -> str:
    return f'version: "1"\nivr:\n  start: {start}\n  menus:\n{menus}'


MAIN_ONLY = """\
    main:
      prompt: "Main."
      options:
"""


def test_unknown_target_menu() -> None:
    assert problems(ivr(MAIN_ONLY + '        "1": {menu: ordres}\n')) == [
        "nlu_data/ivr.yml:8: error: unknown target menu 'ordres'"
    ]


def test_option_keys_must_be_single_digits() -> None:
    text = ivr(
        MAIN_ONLY + '        "12": {speech: true}\n        "*": {speech: true}\n        "1": {speech: true}\n'
    )
    assert problems(text) == [
        "nlu_data/ivr.yml:8: error: option key '12' in menu 'main' is not a single digit 0-9 (* and # are reserved)",
        "nlu_data/ivr.yml:9: error: option key '*' in menu 'main' is not a single digit 0-9 (* and # are reserved)",
    ]


def test_unquoted_digit_keys_are_accepted() -> None:
    config = load_ivr_text(ivr(MAIN_ONLY + "        1: {speech: true}\n"))
    assert list(config.menus["main"].options) == ["1"]


def test_collect_without_slot() -> None:
    text = ivr(MAIN_ONLY + '        "1":\n          collect: {prompt: "Number?", then: {intent: x}}\n')
    assert problems(text) == ["nlu_data/ivr.yml:9: error: collect without slot"]


def test_collect_digit_limits() -> None:
    text = ivr(
        MAIN_ONLY
        + '        "1": {collect: {slot: n, prompt: "N?", min_digits: 6, max_digits: 4, then: {speech: true}}}\n'
    )
    assert problems(text) == ["nlu_data/ivr.yml:8: error: min_digits (6) is larger than max_digits (4)"]


def test_missing_start_menu() -> None:
    text = ivr(MAIN_ONLY + '        "1": {speech: true}\n', start="welcome")
    assert problems(text)[0] == "nlu_data/ivr.yml:3: error: start menu 'welcome' is not defined in 'menus'"
    no_start = 'version: "1"\nivr:\n  menus:\n' + MAIN_ONLY + '        "1": {speech: true}\n'
    assert problems(no_start) == ["nlu_data/ivr.yml:3: error: missing 'start' (the entry menu)"]


def test_unreachable_menu_is_a_warning() -> None:
    text = ivr(
        MAIN_ONLY
        + '        "1": {speech: true}\n    lost:\n      prompt: "Lost."\n      options: {"1": {speech: true}}\n'
    )
    config = load_ivr_text(text, "nlu_data/ivr.yml")
    assert [str(w) for w in config.warnings] == [
        "nlu_data/ivr.yml:9: warning: menu 'lost' cannot be reached from 'main'"
    ]


def test_option_mistakes_are_all_reported() -> None:
    text = ivr(
        MAIN_ONLY
        + '        "1": {handoff: sales}\n'
        + '        "2": {intent: a, response: utter_b}\n'
        + '        "3": {speech: true, promt: "Hi"}\n'
        + '        "4": {hangup: false}\n'
        + '        "4": {speech: true}\n'
        + '        "5": {intent: "two words"}\n'
        + '    other:\n      prompt: ""\n      max_retries: 0\n      timeout: soon\n      options: {"1": {menu: main}}\n'
    )
    assert problems(text) == [
        "nlu_data/ivr.yml:8: error: unknown handoff skill 'sales' (known: billing, general, orders, returns, tech)",
        (
            "nlu_data/ivr.yml:9: error: option needs exactly one of menu, intent, response, handoff, hangup, speech, "
            "collect (found intent, response)"
        ),
        (
            "nlu_data/ivr.yml:10: error: unknown key 'promt' in option (allowed: menu, intent, response, handoff, hangup, "
            "speech, collect, prompt)"
        ),
        "nlu_data/ivr.yml:11: error: 'hangup' must be true",
        "nlu_data/ivr.yml:12: error: duplicate key '4' in options of menu 'main'",
        "nlu_data/ivr.yml:13: error: intent 'two words' is not a valid name (letters, digits, _)",
        "nlu_data/ivr.yml:15: error: prompt must be a non-empty string",
        "nlu_data/ivr.yml:16: error: max_retries must be an integer between 1 and 20",
        "nlu_data/ivr.yml:17: error: timeout must be a number between 0.5 and 3600",
    ]


def test_on_max_retries_must_leave_the_menu() -> None:
    text = (
        'version: "1"\nivr:\n  start: main\n  defaults:\n    on_max_retries: {response: utter_x}\n  menus:\n'
    )
    text += MAIN_ONLY + '        "1": {speech: true}\n'
    assert problems(text) == [
        "nlu_data/ivr.yml:5: error: on_max_retries cannot use 'response' (use menu, intent, handoff, hangup or speech)"
    ]


def test_bad_yaml_and_version() -> None:
    assert problems('version: "1"\nivr:\n  start: [main\n')[0].startswith(
        "nlu_data/ivr.yml:4: error: invalid YAML"
    )
    assert problems("") == ["nlu_data/ivr.yml: error: the file is empty"]
    assert problems(
        'version: "2"\nivr:\n  start: main\n  menus:\n' + MAIN_ONLY + '        "1": {speech: true}\n'
    ) == ["nlu_data/ivr.yml:1: error: unsupported version '2' (expected \"1\")"]


def test_load_from_disk_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "ivr.yml"
    bad.write_text(ivr(MAIN_ONLY + '        "1": {menu: nowhere}\n'), encoding="utf-8")
    with pytest.raises(DataError, match=rf"^{tmp_path}/ivr.yml:8: error: unknown target menu 'nowhere'$"):
        load_ivr(bad)


def test_demo_file_is_clean(demo: IvrConfig) -> None:
    assert demo.warnings == ()
    assert set(demo.routes) == set(demo.menus)
    assert demo.menus["repairs"].agent_skill == "tech"


def test_domain_check_names_missing_intents_responses_and_slots(demo: IvrConfig) -> None:
    domain = Domain(
        intents=["check_order_status", "delivery_time"],
        responses={
            "utter_return_policy": Response("utter_return_policy", (ResponseVariant("We take returns."),))
        },
        slots={"order_number": Slot("order_number", "text")},
    )
    found = [str(p) for p in check_against_domain(demo, domain)]
    line = DEMO.read_text(encoding="utf-8").splitlines().index('        "4": {intent: cancel_order}') + 1
    assert f"{DEMO}:{line}: error: intent 'cancel_order' is not in the domain" in found
    assert any("response 'utter_warranty_info' is not in the domain" in s for s in found)
    assert any("warning: slot 'repair_number' is not in the domain" in s for s in found)
    assert not any(
        "check_order_status" in s or "utter_return_policy" in s or "'order_number'" in s for s in found
    )


def test_demo_menus_match_the_demo_domain(demo: IvrConfig) -> None:
    from bot.training_data.project import load_domain_text

    domain_path = DEMO.parent / "domain.yml"
    domain = load_domain_text(domain_path.read_text(encoding="utf-8"), str(domain_path))
    assert check_against_domain(demo, domain) == []
