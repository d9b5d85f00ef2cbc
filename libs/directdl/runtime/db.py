"""Database engines: SQLite by default, any SQLAlchemy URL (PostgreSQL in production)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    DateTime,
    Dialect,
    Engine,
    TypeDecorator,
    create_engine,
    event,
    text,
)
from sqlalchemy.orm import Session, sessionmaker

from directdl.runtime.sqlite_writers import QueuedWriterConnection


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={
                "check_same_thread": False,
                "timeout": 30,
                "factory": QueuedWriterConnection,
            },
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "before_cursor_execute", _wait_to_write)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _wait_to_write(
    connection: Connection, _cursor: Any, statement: str, *_args: Any, **_kwargs: Any
) -> None:
    dbapi = connection.connection.dbapi_connection
    if isinstance(dbapi, QueuedWriterConnection):
        dbapi.before_statement(statement)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the health check read while a handler writes; foreign keys are off by default.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def ping(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp that comes back aware on every database; SQLite's driver
    drops the zone, and the values were stored as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value
