"""Caller lookup: the built-in contacts table, and an external CRM over HTTP that may be slow or broken."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from callpilot.records.crm import HttpContacts, SqlContacts, contact_lookup
from callpilot.records.db import Database
from callpilot.settings import Settings
from handoff.model import Contact
from tests.fake_crm import FakeCrm
from tests.records_fixtures import sqlite_db  # noqa: F401


@pytest.fixture
def crm() -> Iterator[FakeCrm]:
    server = FakeCrm({
        "+16175550100": (200, {"id": "CRM-42", "name": "Ada Lovelace", "email": "ada@example.org", "tier": "gold"}),
        "+16175550101": (200, {"contacts": [{"contact_id": "CRM-7", "name": "Bo", "phone": "+16175550101"}]}),
        "+16175550142": (200, {"id": "late", "name": "Too Late"}),  # a number the CRM is slow to answer
        "+16175550187": (500, {"error": "database on fire"}),
        "+16175550188": (200, b"<html>maintenance</html>"),
    }, slow={"+16175550142"})
    yield server
    server.close()


def _lookup(lookup: object, number: str) -> Contact | None:
    result: Contact | None = asyncio.run(lookup.by_number(number))  # type: ignore[attr-defined]
    return result


def test_the_builtin_table_knows_the_demo_customers_in_any_written_form(sqlite_db: Database) -> None:  # noqa: F811
    contacts = SqlContacts(sqlite_db)
    found = _lookup(contacts, "(617) 555-0142")
    assert found == Contact("C001", "Sarah Miller", "+16175550142", "sarah.miller@example.com", "premium", "Boston",
                            "sql")
    assert _lookup(contacts, "+16175550000") is None


def test_the_crm_answers_with_its_contact(crm: FakeCrm, sqlite_db: Database) -> None:  # noqa: F811
    lookup = HttpContacts(crm.url, timeout=2.0, fallback=SqlContacts(sqlite_db))
    found = _lookup(lookup, "617 555 0100")
    assert found is not None
    assert (found.contact_id, found.name, found.phone, found.tier, found.source) == (
        "CRM-42", "Ada Lovelace", "+16175550100", "gold", "crm")
    listed = _lookup(lookup, "+16175550101")
    assert listed is not None and listed.contact_id == "CRM-7"
    assert crm.asked == ["+16175550100", "+16175550101"]  # always asked in E.164


def test_a_number_the_crm_does_not_know_is_nobody(crm: FakeCrm, sqlite_db: Database) -> None:  # noqa: F811
    assert _lookup(HttpContacts(crm.url, fallback=SqlContacts(sqlite_db)), "+16175550999") is None


@pytest.mark.parametrize(("number", "why"), [
    ("+16175550142", "slow"),
    ("+16175550187", "500"),
    ("+16175550188", "not JSON"),
])
def test_a_slow_or_broken_crm_falls_back_to_the_builtin_table(
    crm: FakeCrm, sqlite_db: Database, number: str, why: str, caplog: pytest.LogCaptureFixture  # noqa: F811
) -> None:
    lookup = HttpContacts(crm.url, timeout=0.3, fallback=SqlContacts(sqlite_db))
    found = _lookup(lookup, number)
    expected = {"+16175550142": "C001", "+16175550187": "C002", "+16175550188": None}[number]
    assert (found.contact_id if found else None) == expected, why
    assert "CRM lookup failed" in caplog.text and "SqlContacts" in caplog.text


def test_a_crm_that_is_not_running_falls_back_too(sqlite_db: Database) -> None:  # noqa: F811
    lookup = HttpContacts("http://127.0.0.1:9", timeout=0.5, fallback=SqlContacts(sqlite_db))
    found = _lookup(lookup, "+16175550142")
    assert found is not None and found.source == "sql"


def test_the_settings_choose_the_lookup(sqlite_db: Database, tmp_path: Path) -> None:  # noqa: F811
    assert isinstance(contact_lookup(Settings.load(None, {}, state_dir=tmp_path), sqlite_db), SqlContacts)
    chosen = contact_lookup(Settings.load(None, {"CALLPILOT_CRM_URL": "http://crm.local",
                                                 "CALLPILOT_CRM_TIMEOUT": "0.7"}), sqlite_db)
    assert isinstance(chosen, HttpContacts) and chosen.timeout == 0.7 and isinstance(chosen.fallback, SqlContacts)
