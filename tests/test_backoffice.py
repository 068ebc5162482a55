"""The demo back office on its shipped data: look-ups, cancel rules, bookings, spoken ids."""

from __future__ import annotations

import json
import re
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import pytest

from bot.backoffice import (
    AddressChangeOutcome,
    BackOffice,
    BackOfficeDataError,
    CancelOutcome,
    InstallationOutcome,
    OrderStatus,
    RefundStatus,
    Tier,
    UnknownOrderError,
    format_price,
    normalize_email,
    normalize_order_number,
    normalize_phone,
    normalize_repair_number,
    parse_data,
    parse_spoken_date,
    read_data_dir,
    spoken_digits,
)

AS_OF = date(2025, 6, 2)  # the data's own `as_of` (a Monday): no shift
TODAY = date(2026, 3, 4)  # a Wednesday, to check that dates move with "today"


@pytest.fixture
def office() -> BackOffice:
    return BackOffice.demo(today=AS_OF)


# The data itself.


def test_demo_data_has_the_promised_size(office: BackOffice) -> None:
    assert len(office.orders) == 30
    assert len(office.repairs) == 12
    assert len(office.stores) == 6
    assert len(office.products) == 20
    assert len(office.customers) == 15
    assert len({store.city for store in office.stores}) == 6
    assert {order.status for order in office.orders} == set(OrderStatus)


def test_ids_and_phones_have_the_documented_formats(office: BackOffice) -> None:
    assert all(re.fullmatch(r"4\d{4,7}", order.number) for order in office.orders)
    assert all(re.fullmatch(r"R\d{6}", repair.number) for repair in office.repairs)
    phones = [c.phone for c in office.customers] + [s.phone for s in office.stores]
    assert all(re.fullmatch(r"\+1\d{10}", phone) for phone in phones)


def test_orders_and_repairs_belong_to_known_customers(office: BackOffice) -> None:
    for order in office.orders:
        customer = office.customer(order.customer_id)
        assert customer is not None, order.number
        assert (order.customer_name, order.phone, order.email) == (
            customer.name,
            customer.phone,
            customer.email,
        )
    skus = {product.sku for product in office.products}
    for repair in office.repairs:
        assert office.customer(repair.customer_id) is not None, repair.number
        assert repair.sku in skus
        if repair.order_number is not None:
            bought = office.order(repair.order_number)
            assert bought is not None and bought.customer_id == repair.customer_id
            assert repair.sku in {item.sku for item in bought.items}


def test_order_states_are_consistent(office: BackOffice) -> None:
    for order in office.orders:
        if order.has_left_warehouse:
            assert order.carrier and order.tracking_number and order.ship_date, order.number
            assert order.ship_date <= office.today
        if order.status is OrderStatus.CANCELLED:
            assert order.refund is not None and order.refund.amount == order.total
        if order.status is OrderStatus.OUT_FOR_DELIVERY:
            assert order.delivery_window and order.delivery_window.day == office.today


def test_dates_move_so_that_the_data_looks_current() -> None:
    shifted = BackOffice.demo(today=TODAY)
    original = BackOffice.demo(today=AS_OF)
    assert shifted.today == TODAY
    moved, kept = shifted.order("48215"), original.order("48215")
    assert moved and kept and moved.delivery_window and kept.delivery_window
    assert moved.delivery_window.day == TODAY + timedelta(days=1)
    assert moved.delivery_window.day - kept.delivery_window.day == TODAY - AS_OF
    assert moved.delivery_window.describe() == "on Thursday March 5 between 8am and 12pm"


# Look-ups.


@pytest.mark.parametrize(
    "said",
    ["48215", " 48 215 ", "order 48215", "four eight two one five", "forty eight two fifteen"],
)
def test_order_is_found_however_the_number_is_said(office: BackOffice, said: str) -> None:
    order = office.order(said)
    assert order is not None and order.number == "48215"
    assert order.status is OrderStatus.SHIPPED
    assert order.customer_name == "Sarah Miller"


@pytest.mark.parametrize("said", ["41111", "12345", "R104233", "", "my fridge"])
def test_unknown_or_malformed_order_numbers_find_nothing(office: BackOffice, said: str) -> None:
    assert office.order(said) is None
    assert office.refund_for(said) is None


def test_orders_for_phone_are_newest_first(office: BackOffice) -> None:
    numbers = [order.number for order in office.orders_for_phone("(617) 555-0142")]
    assert numbers == ["44471", "48215", "43561"]
    assert (
        office.orders_for_phone("six one seven five five five zero one four two")[0].number
        == "44471"
    )
    assert office.orders_for_phone("+1 999 555 0000") == []
    assert office.orders_for_phone("not a phone") == []


def test_customer_by_phone(office: BackOffice) -> None:
    customer = office.customer_by_phone("+1 206 555 0176")
    assert customer is not None and customer.name == "Kim Nguyen" and customer.tier is Tier.PREMIUM
    assert office.customer_by_phone("206 555 0000") is None


def test_repair_lookup(office: BackOffice) -> None:
    repair = office.repair("r one three one three seven seven")
    assert repair is not None and repair.number == "R131377"
    assert repair.status == "waiting_for_parts" and repair.under_warranty
    assert repair.technician_notes[0] == "Drain pump blocked and cracked."
    assert office.repair("R131377") == office.repair("r131377") == repair
    assert office.repair("R999999") is None
    assert office.repair("48215") is None


def test_product_by_name_sku_alias_or_category_synonym(office: BackOffice) -> None:
    fridge = office.product("fridge")
    assert fridge is not None and fridge.category == "refrigerator"
    assert office.product("refrigerator") == fridge
    tv = office.product("tv")
    assert tv is not None and office.product("telly") == tv
    vista = office.product("BL-TV-65")
    assert vista is not None and vista.name == "Vista 65 OLED TV" and vista.warranty_years == 3
    assert office.product("Brightline Vista 65 OLED TV") == vista
    assert office.product("robot vacuum") == office.product("BL-VC-R5")
    assert office.product("lawnmower") is None
    assert [p.sku for p in office.products_in("washer")] == ["BL-WM-700", "BL-WM-900"]
    assert format_price(Decimal(1199)) == "$1,199.00"


def test_stores_in_and_nearest_store(office: BackOffice) -> None:
    assert [store.store_id for store in office.stores_in("CHICAGO")] == ["CHI"]
    assert office.stores_in("Cambridge") == []
    nearest = {city: office.nearest_store(city) for city in ("cambridge", "houston", "portland")}
    assert {city: s.store_id for city, s in nearest.items() if s} == {
        "cambridge": "BOS",
        "houston": "AUS",
        "portland": "SEA",
    }
    fallback = office.nearest_store("Atlantis")
    assert fallback is not None and fallback.is_default and fallback.city == "Boston"


def test_store_hours(office: BackOffice) -> None:
    denver = office.stores_in("denver")[0]
    sunday = AS_OF + timedelta(days=6)
    assert denver.hours_on(sunday).is_closed
    assert denver.hours_on(AS_OF).describe() == "from 10am to 7pm"
    assert denver.is_open(datetime.combine(AS_OF, time(10, 0)))
    assert not denver.is_open(datetime.combine(AS_OF, time(19, 0)))
    assert not denver.is_open(datetime.combine(sunday, time(12, 0)))


# Changes.


def test_cancel_a_processing_order_refunds_it(office: BackOffice) -> None:
    result = office.cancel_order("four four four seven one")
    assert result.ok and result.outcome is CancelOutcome.CANCELLED
    assert result.refund_amount == Decimal("228.00")
    order = office.order("44471")
    assert order is not None and order.status is OrderStatus.CANCELLED
    assert order.delivery_window is None
    assert order.refund is not None and order.refund.status is RefundStatus.PENDING
    assert office.refund_for("44471") == order.refund
    assert office.cancel_order("44471").outcome is CancelOutcome.ALREADY_CANCELLED


@pytest.mark.parametrize("number", ["48215", "4302291", "45120"])
def test_orders_that_left_the_warehouse_cannot_be_cancelled(
    office: BackOffice, number: str
) -> None:
    before = office.order(number)
    result = office.cancel_order(number)
    assert not result.ok and result.outcome is CancelOutcome.ALREADY_SHIPPED
    assert office.order(number) == before


def test_cancel_unknown_order(office: BackOffice) -> None:
    result = office.cancel_order("49999")
    assert result.outcome is CancelOutcome.NOT_FOUND and result.order is None


def test_changes_stay_in_their_instance() -> None:
    first, second = BackOffice.demo(today=AS_OF), BackOffice.demo(today=AS_OF)
    assert first.cancel_order("41877").ok
    unchanged = second.order("41877")
    assert unchanged is not None and unchanged.status is OrderStatus.PROCESSING
    assert second.cancel_order("41877").ok


def test_change_address_only_before_shipping(office: BackOffice) -> None:
    result = office.change_address("41877", "denver", street="1550 Larimer St")
    assert result.ok and result.order is not None
    assert (result.order.address.city, result.order.address.state) == ("Denver", "CO")
    order = office.order("41877")
    assert order is not None and order.address.street == "1550 Larimer St"
    outcomes = {
        number: office.change_address(number, "Boston").outcome
        for number in ("48215", "47731", "40001")
    }
    assert outcomes == {
        "48215": AddressChangeOutcome.ALREADY_SHIPPED,
        "47731": AddressChangeOutcome.CANCELLED,
        "40001": AddressChangeOutcome.NOT_FOUND,
    }
    assert office.change_address("46002", "Gotham").outcome is AddressChangeOutcome.UNKNOWN_CITY


def test_refunds(office: BackOffice) -> None:
    returned = office.refund_for("40019")
    assert returned is not None and returned.reason == "returned"
    assert returned.status is RefundStatus.PROCESSING and returned.amount == Decimal("179.00")
    paid = office.refund_for("49134")
    assert paid is not None and paid.status is RefundStatus.PAID and paid.paid_on is not None
    assert office.refund_for("48215") is None


def test_invoices_get_increasing_ids(office: BackOffice) -> None:
    first = office.create_invoice("48215", "sarah dot miller at example dot com")
    second = office.create_invoice("4302291", "K.Nguyen@example.org")
    assert (first.invoice_id, second.invoice_id) == ("INV-00001", "INV-00002")
    assert first.email == "sarah.miller@example.com" and first.total == Decimal("1199.00")
    assert second.total == Decimal("2148.00") and second.customer_name == "Kim Nguyen"
    assert office.invoices == (first, second)
    with pytest.raises(UnknownOrderError):
        office.create_invoice("49999", "a@example.com")
    with pytest.raises(ValueError, match="not an email"):
        office.create_invoice("48215", "sarah at nowhere")


def test_ticket_priority_and_customer_link(office: BackOffice) -> None:
    moment = datetime(2025, 6, 2, 10, 30)
    office = BackOffice(
        parse_data(read_data_dir(), today=AS_OF),
        clock=lambda: moment,
    )
    fault = office.create_ticket("technical_fault", "dryer drum stuck", phone="303 555 0121")
    assert fault.ticket_id == "TCK-00001" and fault.priority == "normal"
    assert fault.customer_id == "C006" and fault.phone == "+13035550121"
    assert fault.created_at == moment
    complaint = office.create_ticket("complaint", "rude driver", order_number="45120")
    assert complaint.priority == "high" and complaint.customer_id == "C002"
    premium = office.create_ticket("account_help", "locked out", phone="+16175550142")
    assert premium.priority == "high"
    anonymous = office.create_ticket(
        "technical_fault", "oven", repair_number="r one six three three nine one"
    )
    assert anonymous.customer_id is None and anonymous.repair_number == "R163391"
    assert [t.ticket_id for t in office.tickets] == [
        "TCK-00001",
        "TCK-00002",
        "TCK-00003",
        "TCK-00004",
    ]


def test_book_installation(office: BackOffice) -> None:
    booked = office.book_installation("dishwasher", "tomorrow")
    assert booked.ok and booked.booking_id == "INS-0001"
    assert booked.day == AS_OF + timedelta(days=1) and booked.price == Decimal("119.00")
    assert booked.product == "QuietClean 450 Dishwasher"
    assert (
        office.book_installation("kettle", "tomorrow").outcome is InstallationOutcome.NOT_AVAILABLE
    )
    unknown = office.book_installation("jacuzzi", "tomorrow")
    assert unknown.outcome is InstallationOutcome.UNKNOWN_PRODUCT and unknown.booking_id is None
    too_soon = office.book_installation("oven", AS_OF)
    assert too_soon.outcome is InstallationOutcome.DATE_TOO_SOON
    assert too_soon.next_free_day == AS_OF + timedelta(days=1)  # one job does not fill a day
    sunday = office.book_installation("tv", "sunday")
    assert sunday.outcome is InstallationOutcome.NO_INSTALLS_ON_SUNDAY
    assert sunday.next_free_day == AS_OF + timedelta(days=7)
    with pytest.raises(ValueError, match="not a date"):
        office.book_installation("oven", "whenever")


def test_installation_days_fill_up(office: BackOffice) -> None:
    wednesday = AS_OF + timedelta(days=2)
    ids = [office.book_installation("washer", wednesday).booking_id for _ in range(3)]
    assert ids == ["INS-0001", "INS-0002", "INS-0003"]
    full = office.book_installation("washer", wednesday)
    assert full.outcome is InstallationOutcome.FULLY_BOOKED
    assert full.next_free_day == wednesday + timedelta(days=1)


# Spoken ids and dates.


def test_spoken_digits() -> None:
    assert spoken_digits("four eight two one five") == "48215"
    assert spoken_digits("four three oh two two nine one") == "4302291"
    assert spoken_digits("double four oh nine oh") == "44090"
    assert spoken_digits("forty eight two fifteen") == "48215"
    assert spoken_digits("four eight two banana") is None
    assert normalize_order_number("12") is None
    assert normalize_order_number("order number 4815162") == "4815162"
    assert normalize_repair_number("are one zero four two three three") == "R104233"
    assert normalize_repair_number("R10423") is None
    assert normalize_phone("1-617-555-0142") == "+16175550142"
    assert normalize_phone("555 0142") is None
    assert normalize_email("anna dot berg at gmail dot com") == "anna.berg@gmail.com"
    assert normalize_email("anna berg") is None


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("today", date(2026, 3, 4)),
        ("tomorrow", date(2026, 3, 5)),
        ("the day after tomorrow", date(2026, 3, 6)),
        ("friday", date(2026, 3, 6)),
        ("wednesday", date(2026, 3, 11)),
        ("next friday", date(2026, 3, 13)),
        ("next monday", date(2026, 3, 9)),
        ("next week", date(2026, 3, 9)),
        ("the weekend", date(2026, 3, 7)),
        ("june 3rd", date(2026, 6, 3)),
        ("3rd of june", date(2026, 6, 3)),
        ("january twenty first", date(2027, 1, 21)),
        ("the 14th", date(2026, 3, 14)),
        ("the 2nd", date(2026, 4, 2)),
        ("2026-05-01", date(2026, 5, 1)),
    ],
)
def test_parse_spoken_date(said: str, expected: date) -> None:
    assert parse_spoken_date(said, TODAY) == expected


@pytest.mark.parametrize("said", ["banana", "june", "february 30th", "the 45th", ""])
def test_parse_spoken_date_rejects_non_dates(said: str) -> None:
    assert parse_spoken_date(said, TODAY) is None


# Loading errors name the file and the record.


def test_broken_files_are_reported_with_their_name() -> None:
    texts = read_data_dir()
    with pytest.raises(BackOfficeDataError, match=r"orders\.json:1: invalid JSON"):
        parse_data({**texts, "orders": "[{"})
    orders = json.loads(texts["orders"])
    del orders[3]["status"]
    with pytest.raises(BackOfficeDataError, match=r"order #4 \(45120\): missing 'status'"):
        parse_data({**texts, "orders": json.dumps(orders)})
    stores = json.loads(texts["stores"])
    stores[0]["hours"]["monday"]["opens"] = "nine"
    with pytest.raises(BackOfficeDataError, match=r"store #1\.monday: 'opens' is not a HH:MM time"):
        parse_data({**texts, "stores": json.dumps(stores)})
