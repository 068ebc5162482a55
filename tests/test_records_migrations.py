"""The Alembic migrations build exactly the tables the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, inspect, select

from bot.backoffice import BackOffice
from callpilot.records.db import Database, database_url
from callpilot.records.migrate import current_revision, head_revision
from callpilot.records.models import Base, Contact
from callpilot.settings import Settings
from tests.records_fixtures import database, pg_schema_url  # noqa: F401


def test_the_migrated_schema_matches_the_models(database: Database) -> None:  # noqa: F811
    with database.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    assert current_revision(database.engine) == head_revision(database.engine)


def test_the_first_upgrade_seeds_the_demo_customers_once(database: Database) -> None:  # noqa: F811
    database.upgrade()  # again: nothing happens
    customers = BackOffice.demo().customers
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(Contact)) == len(customers)
        phones = set(session.scalars(select(Contact.phone)))
    assert phones == {c.phone for c in customers}


def test_downgrade_removes_everything_and_upgrade_restores_it(tmp_path: Path) -> None:
    from alembic import command

    from callpilot.records.migrate import alembic_config

    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    db.upgrade()
    command.downgrade(alembic_config(db.engine), "base")
    assert set(inspect(db.engine).get_table_names()) == {"alembic_version"}
    db.upgrade()
    assert {"calls", "api_keys", "contacts", "tickets", "audit_log"} <= set(inspect(db.engine).get_table_names())
    db.dispose()


def test_the_default_database_is_a_sqlite_file_in_the_state_folder(tmp_path: Path) -> None:
    assert database_url(Settings.load(None, {}, state_dir=tmp_path)) == f"sqlite:///{(tmp_path / 'callpilot.db')}"
    url = "postgresql+psycopg://postgres@db.internal:5432/callpilot"
    assert database_url(Settings.load(None, {"CALLPILOT_DATABASE_URL": url})) == url
