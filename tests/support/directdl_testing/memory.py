"""An in-memory SQLite database shared by every session, for unit tests of handlers."""

from __future__ import annotations

from sqlalchemy import Engine, MetaData, create_engine
from sqlalchemy.pool import StaticPool


def memory_engine(metadata: MetaData) -> Engine:
    # StaticPool keeps one connection, so every session sees the same in-memory database.
    engine = create_engine(
        "sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool
    )
    metadata.create_all(engine)
    return engine
