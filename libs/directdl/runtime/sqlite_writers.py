"""SQLite's one writer at a time, queued on a lock in the process instead of SQLite's sleeps.

SQLite lets one connection write at a time. Another that tries waits in its busy handler,
which sleeps 1, 2, 5, 10 ... up to 100 ms between tries, so with a few worker threads and
the outbox relay writing at once most of the time went to sleeping while the database was
free. Here a connection takes a lock shared by every connection of this process to the same
file before its first write of a transaction, and gives it back when the transaction ends:
the next writer starts the moment the last one commits. Other processes on the file are
still kept apart by SQLite's own locking and busy timeout.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

# The statements that start a write transaction in Python's sqlite3 module (it opens one
# implicitly before them); anything else runs outside one, or inside one already ours.
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")
# As long as SQLite's own busy timeout: past it, the write fails as SQLite's would.
WAIT_SECONDS = 30.0

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock_for(database: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(database, threading.Lock())


class QueuedWriterConnection(sqlite3.Connection):
    """A sqlite3 connection that holds its file's writer lock from the first write of a
    transaction until its commit or rollback. Made by `sqlite3.connect(factory=...)`."""

    def __init__(self, database: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(database, *args, **kwargs)
        self._writer_lock = _lock_for(str(database))
        self._writing = False

    def before_statement(self, statement: str) -> None:
        """Called before each statement (by `install`): a write waits its turn."""
        if self._writing or not statement.lstrip()[:7].upper().startswith(_WRITES):
            return
        if not self._writer_lock.acquire(timeout=WAIT_SECONDS):
            raise sqlite3.OperationalError(
                f"database is locked: no turn to write within {WAIT_SECONDS:g} s"
            )
        self._writing = True

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._release()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._release()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._release()

    def _release(self) -> None:
        if self._writing:
            self._writing = False
            self._writer_lock.release()
