"""The unit of work: one transaction, rolled back unless committed, collecting events."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy.orm import Session, sessionmaker

from directdl.contracts.base import Event


class UnitOfWork:
    """Services subclass it to add their repositories in `_open`."""

    session: Session

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self.events: list[Event] = []

    def __enter__(self) -> Self:
        self.session = self._sessions()
        self.events = []
        self._open(self.session)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.session.rollback()
        self.session.close()

    def _open(self, session: Session) -> None:
        """Hook for repositories bound to this transaction's session."""

    def emit(self, event: Event) -> None:
        """Queue an event; it is written to the outbox in this same transaction."""
        self.events.append(event)

    def commit(self) -> None:
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()
        self.events = []
