"""The records database: engine and sessions from `settings.database_url`, and schema upgrades.

`None` means a SQLite file at `<state_dir>/callpilot.db`; PostgreSQL is `postgresql+psycopg://user@host/db`
(a `?options=-csearch_path%3Dschema` suffix selects a schema). The schema only changes through the Alembic
migrations shipped in `callpilot/records/migrations`, run by `callpilot db upgrade` and at server start.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from fastapi import HTTPException, Request
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from callpilot.settings import Settings


def database_url(settings: Settings) -> str:
    """The configured URL, or the default SQLite file under the state folder (`var/`)."""
    if settings.database_url:
        return settings.database_url
    return f"sqlite:///{(settings.state_dir / 'callpilot.db').resolve()}"


def make_engine(url: str) -> Engine:
    """An engine that suits the backend (SQLite: one file shared by threads, foreign keys on, WAL)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


class Database:
    """One engine and its session factory; `session()` commits on success and rolls back on error."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(database_url(settings))

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def upgrade(self, revision: str = "head") -> None:
        """Bring the schema up to `revision` (idempotent)."""
        from callpilot.records.migrate import upgrade

        upgrade(self.engine, revision)

    def dispose(self) -> None:
        self.engine.dispose()


def get_database(request: Request) -> Database:
    """FastAPI dependency: the app's records database (`app.state.database`)."""
    database: Database | None = getattr(request.app.state, "database", None)
    if database is None:
        raise HTTPException(503, "the records database is not configured")
    return database


def get_session(request: Request) -> Iterator[Session]:
    """FastAPI dependency: a session on the app's database, committed when the route returns."""
    with get_database(request).session() as session:
        yield session


T = TypeVar("T")


async def in_session(database: Database | None, work: Callable[[Session], T], default: T) -> T:
    """`work(session)` in one committed session on a worker thread (never on the event loop); `default` when
    there is no database (yet)."""
    if database is None:
        return default

    def run() -> T:
        with database.session() as session:
            return work(session)

    return await asyncio.to_thread(run)
