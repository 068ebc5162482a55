"""The agent's note of a Chinese call, in Chinese: the same facts as `agent_note`, as a colleague writes them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.dialogue.languages import SLOT_VALUE_NAMES
from bot.dialogue.state import ConversationState

TOPICS: dict[str, str] = {
    "check_order_status": "查询{order}的物流状态",
    "delivery_time": "{order}的送货时间",
    "change_delivery_address": "修改{order}的收货地址",
    "cancel_order": "取消{order}",
    "return_policy": "{product}退货",
    "refund_status": "{order}的退款",
    "warranty_info": "{product}保修",
    "product_info": "{product}产品信息",
    "opening_hours": "营业时间",
    "store_location": "找{city}门店",
    "payment_methods": "支付方式",
    "invoice_request": "{order}的发票",
    "track_repair": "{repair}的维修进度",
    "book_installation": "预约{product}安装",
    "account_help": "网上账户问题",
    "complaint": "投诉",
    "technical_fault": "{product}故障",
    "billing_dispute": "扣款异议",
}
REASONS: dict[str, str] = {
    "caller_asked": "客户要求转人工",
    "intent_needs_agent": "这个问题需要人工处理",
    "repeated_fallback": "机器人连续两次没听懂客户",
    "form_failed": "客户两次没能提供有效的{slot}",
    "configured_rule": "转接规则要求人工处理这类来电",
    "ivr_request": "客户在按键菜单中选择了人工服务",
    "action_request": "机器人没能完成请求",
}
SLOT_LABELS: dict[str, str] = {
    "order_number": "订单号", "repair_number": "维修单号", "email": "邮箱", "city": "城市", "product": "产品",
    "date": "日期", "verification_answer": "验证答案",
}
_PRODUCTS = SLOT_VALUE_NAMES["zh"]["product"]


def _fill(template: str, slots: Mapping[str, Any]) -> str:
    product = slots.get("product")
    return template.format(
        order=f"订单{slots['order_number']}" if slots.get("order_number") else "订单",
        repair=f"维修单{slots['repair_number']}" if slots.get("repair_number") else "维修单",
        product=_PRODUCTS.get(str(product), str(product)) if product else "",
        city=str(slots["city"]) if slots.get("city") else "",
    )


def write_note_zh(state: ConversationState, *, reason: str, skill: str, topics: list[str], now: str | None,
                  words: str | None) -> str:
    """One to three sentences for the agent, in Chinese (the caller's words quoted as they were said)."""
    slots = state.filled_slots()
    who = f"来电{state.caller_number}" if state.caller_number else "匿名来电"
    if state.verified:
        who += "（已核实身份）"
    wants = f"需要帮忙处理{_fill(TOPICS[now], slots)}" if now else "没有说明需求"
    first = f"{who}{wants}" + (f"：“{words}”" if words else "")
    keys = [t.dtmf for t in state.transcript if t.dtmf]
    if state.ivr_path or keys:
        first += f"（按键：{' > '.join(state.ivr_path) or ' '.join(k for k in keys if k)}）"
    earlier = []
    for intent in topics[:-1]:
        done = _fill(TOPICS[intent], slots)
        if intent != now and done not in earlier:
            earlier.append(done)
    why = REASONS.get(reason, "机器人转接").format(slot=SLOT_LABELS.get(state.requested_slot or "", "信息"))
    second = f"转人工的原因：{why}。"
    if earlier:
        second = f"机器人已经帮忙处理了{'、'.join(earlier)}；{second}"
    known = [f"{SLOT_LABELS[name]}{_PRODUCTS.get(str(value), value) if name == 'product' else value}"
             for name, value in sorted(slots.items()) if name in SLOT_LABELS and name != "verification_answer"]
    left = f"待处理：{_fill(TOPICS[now], slots)}" if now else "待处理：了解客户需求"
    third = left + (f"（已知：{'，'.join(known)}）" if known else "") + f"。队列：{skill}。"
    return f"{first}。{second}{third}"
