"""SQLite writers of one process take turns on a lock, and always give it back."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from directdl.runtime import sqlite_writers
from directdl.runtime.db import make_engine

pytestmark = pytest.mark.unit


def engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    made = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with made.begin() as connection:
        connection.execute(text("CREATE TABLE t (i INTEGER)"))
    return made


def test_a_second_writer_waits_for_the_first_to_commit_and_readers_never_wait(
    tmp_path: Path,
) -> None:
    db = engine(tmp_path)
    order: list[str] = []
    first_wrote = threading.Event()

    def first() -> None:
        with db.begin() as connection:
            connection.execute(text("INSERT INTO t VALUES (1)"))
            first_wrote.set()
            with db.connect() as reader:  # a reader meanwhile: not held up
                order.append(f"read {reader.execute(text('SELECT count(*) FROM t')).scalar()}")
            time.sleep(0.2)
            order.append("first commits")

    def second() -> None:
        first_wrote.wait()
        with db.begin() as connection:
            connection.execute(text("INSERT INTO t VALUES (2)"))
            order.append("second wrote")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert order == ["read 0", "first commits", "second wrote"]


def test_the_turn_is_given_back_on_rollback_and_on_a_failed_statement(tmp_path: Path) -> None:
    db = engine(tmp_path)
    with db.connect() as connection:
        connection.execute(text("INSERT INTO t VALUES (1)"))
        connection.rollback()
        with pytest.raises(Exception, match="no such table"):
            connection.execute(text("INSERT INTO missing VALUES (1)"))
        connection.rollback()
    lock = sqlite_writers._lock_for(str(tmp_path / "w.db"))
    assert lock.acquire(timeout=0.1), "the lock was left held"
    lock.release()


def test_a_writer_that_waits_too_long_fails_as_sqlite_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = engine(tmp_path)
    monkeypatch.setattr(sqlite_writers, "WAIT_SECONDS", 0.1)
    lock = sqlite_writers._lock_for(str(tmp_path / "w.db"))
    lock.acquire()
    try:
        with db.begin() as connection, pytest.raises(Exception, match="database is locked"):
            connection.execute(text("INSERT INTO t VALUES (1)"))
    finally:
        lock.release()
