"""Load the back office's JSON files: path -> text -> dict -> typed records.

Only `read_data_dir` touches the disk. Every date in the files is shifted by
`today - as_of`, so the demo always looks current (a delivery "tomorrow" stays
tomorrow whenever the demo runs).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, time, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from bot.backoffice.models import (
    Address,
    City,
    Customer,
    DayHours,
    DeliveryWindow,
    Order,
    OrderItem,
    OrderStatus,
    Product,
    Refund,
    RefundStatus,
    Repair,
    RepairStatus,
    Store,
    Tier,
)

DEMO_DATA_DIR = Path(__file__).parent / "data"
FILES = ("meta", "products", "customers", "orders", "repairs", "stores", "cities")
_WEEKDAYS = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)


class BackOfficeDataError(ValueError):
    """A data file is missing, malformed or inconsistent; the message names file and record."""


@dataclass(frozen=True)
class DemoData:
    """Everything the back office knows, as immutable records."""

    as_of: date
    products: tuple[Product, ...]
    categories: Mapping[str, str]  # lower-cased alias or category -> category
    customers: tuple[Customer, ...]
    orders: tuple[Order, ...]
    repairs: tuple[Repair, ...]
    stores: tuple[Store, ...]
    cities: tuple[City, ...]


class _Record:
    """One JSON object with typed, error-reporting accessors."""

    def __init__(self, raw: Any, where: str, shift: timedelta) -> None:
        if not isinstance(raw, dict):
            raise BackOfficeDataError(f"{where}: expected an object, got {type(raw).__name__}")
        self.raw: dict[str, Any] = raw
        self.where = where
        self.shift = shift

    def _get(self, key: str, kind: type | tuple[type, ...]) -> Any:
        if key not in self.raw:
            raise BackOfficeDataError(f"{self.where}: missing {key!r}")
        value = self.raw[key]
        if not isinstance(value, kind):
            raise BackOfficeDataError(f"{self.where}: {key!r} has the wrong type ({value!r})")
        return value

    def text(self, key: str) -> str:
        return str(self._get(key, str))

    def opt_text(self, key: str) -> str | None:
        return None if self.raw.get(key) is None else self.text(key)

    def number(self, key: str) -> int:
        return int(self._get(key, int))

    def flag(self, key: str) -> bool:
        return bool(self._get(key, bool))

    def amount(self, key: str) -> Decimal:
        try:
            return Decimal(self.text(key))
        except InvalidOperation as exc:
            raise BackOfficeDataError(f"{self.where}: {key!r} is not an amount") from exc

    def opt_amount(self, key: str) -> Decimal | None:
        return None if self.raw.get(key) is None else self.amount(key)

    def day(self, key: str) -> date:
        try:
            return date.fromisoformat(self.text(key)) + self.shift
        except ValueError as exc:
            raise BackOfficeDataError(f"{self.where}: {key!r} is not a YYYY-MM-DD date") from exc

    def opt_day(self, key: str) -> date | None:
        return None if self.raw.get(key) is None else self.day(key)

    def clock(self, key: str) -> time:
        try:
            return time.fromisoformat(self.text(key))
        except ValueError as exc:
            raise BackOfficeDataError(f"{self.where}: {key!r} is not a HH:MM time") from exc

    def coordinate(self, key: str) -> float:
        return float(self._get(key, (int, float)))

    def strings(self, key: str) -> tuple[str, ...]:
        values = self._get(key, list)
        return tuple(str(v) for v in values)

    def child(self, key: str) -> _Record | None:
        value = self.raw.get(key)
        return None if value is None else _Record(value, f"{self.where}.{key}", self.shift)

    def children(self, key: str) -> list[_Record]:
        return [
            _Record(item, f"{self.where}.{key}[{i}]", self.shift)
            for i, item in enumerate(self._get(key, list))
        ]


def read_data_dir(path: Path = DEMO_DATA_DIR) -> dict[str, str]:
    """Read every back-office file of `path`: name (without `.json`) -> text."""
    missing = [name for name in FILES if not (path / f"{name}.json").is_file()]
    if missing:
        raise BackOfficeDataError(f"{path}: missing files: {', '.join(missing)}")
    return {name: (path / f"{name}.json").read_text(encoding="utf-8") for name in FILES}


def parse_data(texts: Mapping[str, str], *, today: date | None = None) -> DemoData:
    """Build the records from file texts; dates move so that `as_of` becomes `today`."""
    docs: dict[str, Any] = {}
    for name in FILES:
        try:
            docs[name] = json.loads(texts[name])
        except KeyError as exc:
            raise BackOfficeDataError(f"{name}.json: not given") from exc
        except json.JSONDecodeError as exc:
            raise BackOfficeDataError(f"{name}.json:{exc.lineno}: invalid JSON: {exc.msg}") from exc
    meta = _Record(docs["meta"], "meta.json", timedelta(0))
    as_of = meta.day("as_of")
    shift = timedelta(0) if today is None else today - as_of

    def records(name: str, label: str, raw: Any) -> list[_Record]:
        if not isinstance(raw, list):
            raise BackOfficeDataError(f"{name}.json: expected a list of {label}s")
        return [
            _Record(item, f"{name}.json: {label} #{i + 1}", shift) for i, item in enumerate(raw)
        ]

    catalogue = _Record(docs["products"], "products.json", shift)
    return DemoData(
        as_of=as_of + shift,
        products=tuple(
            _product(r) for r in records("products", "product", catalogue.raw.get("products"))
        ),
        categories=_categories(catalogue),
        customers=tuple(_customer(r) for r in records("customers", "customer", docs["customers"])),
        orders=tuple(_order(r) for r in records("orders", "order", docs["orders"])),
        repairs=tuple(_repair(r) for r in records("repairs", "repair", docs["repairs"])),
        stores=tuple(_store(r) for r in records("stores", "store", docs["stores"])),
        cities=tuple(_city(r) for r in records("cities", "city", docs["cities"])),
    )


def _categories(catalogue: _Record) -> dict[str, str]:
    table = catalogue._get("categories", dict)
    out: dict[str, str] = {}
    for category, aliases in table.items():
        out[str(category).lower()] = str(category)
        for alias in aliases:
            out[str(alias).lower()] = str(category)
    return out


def _city(r: _Record) -> City:
    return City(r.text("name"), r.text("state"), r.coordinate("lat"), r.coordinate("lon"))


def _product(r: _Record) -> Product:
    return Product(
        sku=r.text("sku"),
        name=r.text("name"),
        category=r.text("category"),
        price=r.amount("price"),
        warranty_years=r.number("warranty_years"),
        installation_available=r.flag("installation_available"),
        installation_price=r.opt_amount("installation_price"),
        aliases=r.strings("aliases"),
    )


def _customer(r: _Record) -> Customer:
    try:
        tier = Tier(r.text("tier"))
    except ValueError as exc:
        raise BackOfficeDataError(f"{r.where}: unknown tier {r.raw['tier']!r}") from exc
    return Customer(
        r.text("customer_id"),
        r.text("name"),
        r.text("phone"),
        r.text("email"),
        tier,
        r.text("city"),
    )


def _order(r: _Record) -> Order:
    r.where = f"{r.where} ({r.raw.get('number')})"
    window = r.child("delivery_window")
    address = r.child("address")
    refund = r.child("refund")
    if address is None:
        raise BackOfficeDataError(f"{r.where}: missing 'address'")
    try:
        status = OrderStatus(r.text("status"))
        refund_status = RefundStatus(refund.text("status")) if refund else None
    except ValueError as exc:
        raise BackOfficeDataError(f"{r.where}: {exc}") from exc
    return Order(
        number=r.text("number"),
        customer_id=r.text("customer_id"),
        customer_name=r.text("customer_name"),
        phone=r.text("phone"),
        email=r.text("email"),
        status=status,
        order_date=r.day("order_date"),
        ship_date=r.opt_day("ship_date"),
        delivery_window=(
            DeliveryWindow(window.day("date"), window.clock("start"), window.clock("end"))
            if window
            else None
        ),
        address=Address(
            address.text("street"),
            address.text("city"),
            address.text("state"),
            address.text("zip_code"),
        ),
        carrier=r.opt_text("carrier"),
        tracking_number=r.opt_text("tracking_number"),
        payment_method=r.text("payment_method"),
        items=tuple(
            OrderItem(
                i.text("sku"),
                i.text("name"),
                i.number("quantity"),
                i.amount("unit_price"),
            )
            for i in r.children("items")
        ),
        refund=(
            Refund(
                refund.amount("amount"),
                refund_status,
                refund.text("reason"),
                refund.day("requested_on"),
                refund.opt_day("paid_on"),
            )
            if refund and refund_status
            else None
        ),
    )


def _repair(r: _Record) -> Repair:
    try:
        status = RepairStatus(r.text("status"))
    except ValueError as exc:
        raise BackOfficeDataError(f"{r.where}: {exc}") from exc
    return Repair(
        number=r.text("number"),
        customer_id=r.text("customer_id"),
        order_number=r.opt_text("order_number"),
        sku=r.text("sku"),
        product=r.text("product"),
        fault=r.text("fault"),
        status=status,
        received_on=r.day("received_on"),
        expected_on=r.day("expected_on"),
        under_warranty=r.flag("under_warranty"),
        technician_notes=r.strings("technician_notes"),
    )


def _store(r: _Record) -> Store:
    hours = r._get("hours", dict)
    days: list[DayHours] = []
    for weekday, name in enumerate(_WEEKDAYS):
        if name not in hours:
            raise BackOfficeDataError(f"{r.where}: no hours for {name}")
        day = None if hours[name] is None else _Record(hours[name], f"{r.where}.{name}", r.shift)
        if day is None:
            days.append(DayHours(weekday, None, None))
        else:
            days.append(DayHours(weekday, day.clock("opens"), day.clock("closes")))
    return Store(
        store_id=r.text("store_id"),
        name=r.text("name"),
        street=r.text("street"),
        city=r.text("city"),
        state=r.text("state"),
        zip_code=r.text("zip_code"),
        phone=r.text("phone"),
        hours=tuple(days),
        is_default=r.flag("default"),
    )
