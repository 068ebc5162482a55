"""PII redaction: what is replaced, what is kept (order numbers, checksum failures), and the log filter."""

from __future__ import annotations

import logging

import pytest

from callpilot.records.redaction import RedactingFilter, cn_id_valid, install_log_redaction, luhn_valid, redact


def _with_check_digit(body: str) -> str:
    """Append the Luhn check digit (written out independently of the code under test)."""
    digits = [int(d) for d in body][::-1]
    total = sum((d * 2 - 9 if d * 2 > 9 else d * 2) if i % 2 == 0 else d for i, d in enumerate(digits))
    return body + str((10 - total % 10) % 10)


@pytest.mark.parametrize(
    ("said", "stored"),
    [
        # Payment cards: Luhn-valid, 13 to 19 digits, spaces or dashes.
        ("my card is 4111 1111 1111 1111", "my card is [card]"),
        ("4111-1111-1111-1111 expires 04/28", "[card] expires 04/28"),
        ("card 4111111111111111.", "card [card]."),
        ("mastercard 5500 0000 0000 0004 please", "mastercard [card] please"),
        ("amex 3782 822463 10005", "amex [card]"),
        ("discover 6011111111111117", "discover [card]"),
        ("old visa 4222222222222", "old visa [card]"),  # 13 digits
        (f"maestro {_with_check_digit('676770000000000000')}", "maestro [card]"),  # 19 digits
        ("two cards 4111111111111111 and 5500000000000004", "two cards [card] and [card]"),
        # ... a number that fails the Luhn check is left alone.
        ("4111 1111 1111 1112", "4111 1111 1111 1112"),
        ("reference 1234567890123", "reference 1234567890123"),
        ("tracking 9400 1000 0000 0000 0000 00", "tracking 9400 1000 0000 0000 0000 00"),  # 22 digits: too long
        # Chinese resident ID: 18 characters with the GB 11643 check character.
        ("身份证 11010519491231002X", "身份证 [id]"),
        ("id 11010519491231002x ok", "id [id] ok"),
        ("id 110101199003074477", "id [id]"),
        ("id 110101199003074479", "id 110101199003074479"),  # wrong check digit (and not Luhn-valid)
        ("id 110101199003074478", "id [card]"),  # wrong ID check digit, but a Luhn-valid 18-digit card number
        ("id 11010519491231002Y", "id 11010519491231002Y"),
        # E-mail addresses.
        ("write to anna.berg@gmail.com today", "write to [email] today"),
        ("ANNA+orders@Mail.Example.co.uk", "[email]"),
        ("at sign alone @ home", "at sign alone @ home"),
        # Phone numbers.
        ("call me on (617) 555-0142", "call me on [phone]"),
        ("617-555-0142 or 617.555.0143", "[phone] or [phone]"),
        ("6175550142", "[phone]"),
        ("1 617 555 0142", "[phone]"),
        ("+1 617 555 0142", "[phone]"),
        ("+44 20 7946 0958", "[phone]"),
        ("+86 138 0013 8000", "[phone]"),
        ("手机 13812345678", "手机 [phone]"),
        ("138-1234-5678", "[phone]"),
        # Kept: order and repair numbers, amounts, dates, times, short numbers.
        ("where is order 48215", "where is order 48215"),
        ("orders 48215 and 48216", "orders 48215 and 48216"),
        ("repair R104233", "repair R104233"),
        ("it cost $1,299.00 on 2026-11-26 at 14:30", "it cost $1,299.00 on 2026-11-26 at 14:30"),
        ("call lasted 1764192000.123 s", "call lasted 1764192000.123 s"),
        ("press 1 for orders", "press 1 for orders"),
        ("", ""),
        # Digits read out as words.
        ("my card is four one one one one one one one one one one one one one one one", "my card is [card]"),
        ("call me at six one seven, five five five, zero one four two please", "call me at [phone] please"),
        ("Six One Seven Five Five Five Oh One Four Two", "[phone]"),
        ("order four eight two one five", "order four eight two one five"),
        ("four one one one one one one one one one one one one one one two", "four one one one one one one one one one one one one one one two"),
        ("one two three four five six seven eight nine ten", "one two three four five six seven eight nine ten"),
        # Chinese callers: numbers inside Chinese text, +86 or not, landlines, Chinese numerals, bank cards.
        ("我的手机号13812345678", "我的手机号[phone]"),
        ("打我电话+86 138 1234 5678吧", "打我电话[phone]吧"),
        ("+8613812345678", "[phone]"),  # 13 digits that also pass the Luhn check: a phone, not a card
        ("86 13812345678", "[phone]"),
        ("座机021-62345678", "座机[phone]"),
        ("0571 8765 4321找我", "[phone]找我"),
        ("(010)62345678", "[phone]"),
        ("我的手机是一三八幺二三四五六七八", "我的手机是[phone]"),
        ("手机 幺三八，幺二三四，五六七八", "手机 [phone]"),
        ("卡号6222 0212 3456 7890 128", "卡号[card]"),
        (f"银行卡{_with_check_digit('621700000000000000')}", "银行卡[card]"),  # UnionPay, 19 digits
        ("身份证号11010519491231002X", "身份证号[id]"),
        ("邮箱zhang.wei@163.com，谢谢", "邮箱[email]，谢谢"),
        ("订单48215到哪了", "订单48215到哪了"),
        ("订单四八二一五", "订单四八二一五"),
        ("维修单R104233", "维修单R104233"),
        ("一共1199元，12月5日送", "一共1199元，12月5日送"),
        # Mixed.
        ("order 48215, card 4111 1111 1111 1111, phone 617 555 0142, mail a@b.io",
         "order 48215, card [card], phone [phone], mail [email]"),
    ],
)
def test_redact(said: str, stored: str) -> None:
    assert redact(said) == stored


def test_the_checksums() -> None:
    assert luhn_valid("79927398713") and not luhn_valid("79927398710")
    assert cn_id_valid("11010519491231002X") and not cn_id_valid("110105194912310021")
    assert not cn_id_valid("1101051949123100") and not cn_id_valid("11010519491231002")


def test_the_log_filter_redacts_formatted_messages(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("callpilot.test_redaction")
    install_log_redaction()
    with caplog.at_level(logging.INFO, logger="callpilot"):
        logger.info("caller %s paid with %s for order %s", "+16175550142", "4111 1111 1111 1111", 48215)
        logging.getLogger("callpilot").warning("mail sam@example.org")
    assert [r.getMessage() for r in caplog.records] == [
        "caller [phone] paid with [card] for order 48215",
        "mail [email]",
    ]


def test_the_filter_is_installed_once_and_covers_loggers_created_later(caplog: pytest.LogCaptureFixture) -> None:
    late = logging.getLogger("handoff.created_after_install_" + str(id(caplog)))
    assert not late.filters
    with caplog.at_level(logging.INFO):
        first, second = install_log_redaction(), install_log_redaction()  # the root's handlers get it too
        late.info("agent notes: customer ID 11010519491231002X")
    assert first is second
    assert logging.getLogger("voice_gateway").filters.count(first) == 1
    assert caplog.records[-1].getMessage() == "agent notes: customer ID [id]"


def test_access_log_lines_are_redacted_and_keep_their_format() -> None:
    """uvicorn's access formatter reads `record.args`; a caller number in a query string is still removed."""
    import io

    from uvicorn.logging import AccessFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False))
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("uvicorn.access.test_redaction")
    logger.propagate = False
    logger.addHandler(handler)
    logger.warning('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET",
                   "/api/v1/calls?caller=%2B16175550142&limit=5", "1.1", 200)
    logger.warning('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/api/v1/calls/CA12/recording", "1.1", 200)
    assert stream.getvalue().splitlines() == [
        '127.0.0.1:5000 - "GET /api/v1/calls?caller=[phone]&limit=5 HTTP/1.1" 200 OK',
        '127.0.0.1:5000 - "GET /api/v1/calls/CA12/recording HTTP/1.1" 200 OK',
    ]


def test_stored_text_also_loses_any_long_digit_run() -> None:
    from callpilot.records.redaction import redact_stored

    assert redact_stored("114111111111111111#") == "[card]#"  # menu keys then a card: fails Luhn as a whole
    assert redact_stored("4111111111111111") == "[card]"
    assert redact_stored("order 48215, tracking 1234567890123") == "order 48215, tracking [card]"
    assert redact_stored("call +16175550142") == "call [phone]" and redact_stored("") == ""
    twilio_id = "CA" + "0123456789012345" + "abcdef0123456789"  # a call id in a recording's path stays
    assert redact_stored(f"/rec/{twilio_id}.wav") == f"/rec/{twilio_id}.wav"
