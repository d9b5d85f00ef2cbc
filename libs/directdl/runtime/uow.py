"""The unit of work: one transaction, rolled back unless committed, collecting what to send."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from sqlalchemy.orm import Session, sessionmaker

from directdl.contracts.base import Message
from directdl.contracts.reply import Reply


@dataclass(frozen=True)
class MessageContext:
    """The delivery being handled, for handlers that answer it later (a deploy does)."""

    message_id: str
    routing_key: str
    reply_to: str | None = None
    correlation_id: str | None = None


@dataclass(frozen=True)
class LaterReply:
    reply_to: str
    correlation_id: str | None
    reply: Reply


class UnitOfWork:
    """Services subclass it to add their repositories in `_open`."""

    session: Session

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self.message: MessageContext | None = None
        self.outgoing: list[tuple[Message, str]] = []
        self.replies: list[LaterReply] = []
        self._after_commit: list[Callable[[], None]] = []

    def __enter__(self) -> Self:
        self.session = self._sessions()
        self.outgoing = []
        self.replies = []
        self._after_commit = []
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

    def emit(self, message: Message, routing_key: str | None = None) -> None:
        """Queue an event, or a command addressed by `routing_key`, in this same transaction."""
        self.outgoing.append((message, routing_key or message.routing_key))

    def reply(self, reply_to: str, correlation_id: str | None, reply: Reply) -> None:
        """Answer a command handled earlier, whose reply was deferred."""
        self.replies.append(LaterReply(reply_to, correlation_id, reply))

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once this transaction has committed, e.g. to wake a worker."""
        self._after_commit.append(callback)

    def commit(self) -> None:
        self.session.commit()
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()

    def rollback(self) -> None:
        self.session.rollback()
        self.outgoing = []
        self.replies = []
        self._after_commit = []
