"""Fixtures for the records tests: an upgraded database on SQLite, or in a throwaway PostgreSQL schema."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from callpilot.records.db import Database

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_available() -> bool:
    try:
        engine = create_engine(POSTGRES)
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


def sqlite_database(folder: Path) -> Database:
    database = Database(f"sqlite:///{folder / 'callpilot.db'}")
    database.upgrade()
    return database


@pytest.fixture(scope="session")
def pg_schema_url() -> Iterator[str]:
    """A uniquely named schema for this test session, dropped at the end."""
    if not postgres_available():
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    schema = f"callpilot_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An upgraded, empty-but-seeded records database on each backend."""
    if request.param == "sqlite":
        db = sqlite_database(tmp_path)
        yield db
        db.dispose()
        return
    url = request.getfixturevalue("pg_schema_url")
    db = Database(url)
    db.upgrade()
    with db.engine.begin() as connection:  # each test starts clean; the schema stays for the session
        for table in ("calls", "api_keys", "tickets", "audit_log"):
            connection.execute(text(f"DELETE FROM {table}"))
    yield db
    db.dispose()


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    db = sqlite_database(tmp_path)
    yield db
    db.dispose()
