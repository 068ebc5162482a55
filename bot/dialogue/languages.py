"""What the engine says by itself in each language, and the language menu of a line with several."""

from __future__ import annotations

from collections.abc import Sequence

# The engine's built-in texts (`DEFAULT_TEXTS`) in Chinese; a domain's own zh responses win over these.
ZH_TEXTS: dict[str, str] = {
    "utter_default": "不好意思，我没听明白，您能换个说法吗？",
    "utter_handoff": "正在为您转接人工客服，请不要挂机。",
    "utter_handoff_waiting": "客服人员马上就来，感谢您的耐心等待。",
    "utter_form_stopped": "好的，那我们先不办这个了。",
    "utter_how_can_i_help": "请问还有什么可以帮您？",
    "utter_invalid_generic": "不好意思，这个好像不太对。",
    "utter_no_input": "不好意思，我没有听到您说话。",
    "utter_action_failed": "不好意思，系统出了点问题。",
    "utter_nothing_to_repeat": "我还没说什么呢。请问有什么可以帮您？",
    "utter_greet": "您好，请问有什么可以帮您？",
    "utter_ivr_intro": "我们改用按键菜单吧。",
    "utter_speech_unavailable": "不好意思，现在暂时无法识别语音，请使用按键菜单。",
    "utter_ivr_unavailable": "不好意思，按键菜单暂时不可用。",
    "utter_session_ended": "本次通话已结束。",
    "utter_confirm_goodbye": "不好意思，请问您是要结束通话吗？",
    "utter_offer_order_check": "需要我帮您查一下具体的订单吗？",
}
BUILT_IN_TEXTS: dict[str, dict[str, str]] = {"zh": ZH_TEXTS}

# Saying "stop" in the middle of a form, per language (matched as words in English, as text in Chinese).
STOP_WORDS: dict[str, tuple[str, ...]] = {
    "en": ("stop", "never mind", "nevermind", "forget it", "forget about it", "cancel that", "leave it"),
    "zh": ("算了", "不用了", "不要了", "不查了", "先不办了", "别管了"),
}

# One line of the language menu per language, said in that language.
_MENU_LINES = {"zh": "中文服务请按{key}。", "en": "For English, press {key}."}


def language_keys(languages: Sequence[str]) -> dict[str, str]:
    """Key -> language: the line's first language is 1, the second 2, ..."""
    return {str(i + 1): language for i, language in enumerate(languages[:9])}


def language_menu(languages: Sequence[str]) -> str:
    """ "中文服务请按1。For English, press 2." for a zh, en line."""
    return " ".join(_MENU_LINES.get(lang, f"{lang}: {{key}}").format(key=key)
                    for key, lang in language_keys(languages).items())

# Slot values the back office keeps in English (canonical product names, states) as said in another language.
SLOT_VALUE_NAMES: dict[str, dict[str, dict[str, str]]] = {
    "zh": {
        "product": {
            "refrigerator": "冰箱", "washing machine": "洗衣机", "tv": "电视", "dryer": "烘干机",
            "dishwasher": "洗碗机", "oven": "烤箱", "microwave": "微波炉", "vacuum cleaner": "吸尘器",
            "air conditioner": "空调", "freezer": "冷柜", "coffee machine": "咖啡机",
        },
        "order_status": {"processing": "备货中", "shipped": "已发货", "out_for_delivery": "派送中",
                         "delivered": "已送达", "cancelled": "已取消"},
        "repair_status": {"received": "已收到", "diagnosing": "检测中", "waiting_for_parts": "等配件",
                          "repaired": "已修好", "returned": "已寄回"},
    },
}
