"""The inbox (processed message ids) and the outbox (messages to publish), per service."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.engine import CursorResult, Row
from sqlalchemy.orm import Session

from directdl.runtime.db import UtcDateTime


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Outgoing:
    """A message waiting in the outbox. An empty exchange means a reply (default exchange)."""

    message_id: str
    exchange: str
    routing_key: str
    body: bytes
    correlation_id: str | None = None
    id: int | None = None


@dataclass(frozen=True)
class Processed:
    message_id: str
    routing_key: str
    reply_to: str | None
    correlation_id: str | None
    reply: bytes | None


class MessageStore:
    """Adds the `inbox` and `outbox` tables to a service's own MetaData."""

    def __init__(self, metadata: MetaData) -> None:
        self.inbox = Table(
            "inbox",
            metadata,
            Column("message_id", String(255), primary_key=True),
            Column("routing_key", String(255), nullable=False),
            Column("reply_to", String(255)),
            Column("correlation_id", String(255)),
            Column("reply", LargeBinary),
            Column("processed_at", UtcDateTime, nullable=False, index=True),
        )
        self.outbox = Table(
            "outbox",
            metadata,
            Column("id", Integer, primary_key=True, autoincrement=True),
            Column("message_id", String(64), nullable=False, unique=True),
            Column("exchange", String(255), nullable=False),
            Column("routing_key", String(255), nullable=False),
            Column("body", LargeBinary, nullable=False),
            Column("correlation_id", String(255)),
            Column("created_at", UtcDateTime, nullable=False),
            Column("sent_at", UtcDateTime, index=True),
            Column("last_error", Text),
        )
        self._insert_inbox = self.inbox.insert()
        self._insert_outbox = self.outbox.insert()

    def find_processed(self, session: Session, message_id: str) -> Processed | None:
        row = session.execute(
            select(self.inbox).where(self.inbox.c.message_id == message_id)
        ).one_or_none()
        if row is None:
            return None
        return Processed(
            row.message_id, row.routing_key, row.reply_to, row.correlation_id, row.reply
        )

    def any_processed(self, session: Session, message_ids: Sequence[str]) -> bool:
        """Whether the inbox holds any of these message ids: one query for a group."""
        found = session.execute(
            select(self.inbox.c.message_id).where(self.inbox.c.message_id.in_(message_ids)).limit(1)
        ).first()
        return found is not None

    def record_processed(self, session: Session, processed: Processed) -> None:
        # The values as parameters of one prebuilt statement: building `.values(...)` for
        # each message cost more than the insert.
        session.execute(
            self._insert_inbox,
            {
                "message_id": processed.message_id,
                "routing_key": processed.routing_key,
                "reply_to": processed.reply_to,
                "correlation_id": processed.correlation_id,
                "reply": processed.reply,
                "processed_at": utcnow(),
            },
        )

    def enqueue(self, session: Session, *messages: Outgoing) -> None:
        """Put messages in the outbox, in this order, with one statement: a fan-out to a
        thousand hosts is one executemany, not a thousand round trips."""
        if not messages:
            return
        now = utcnow()
        session.execute(
            self._insert_outbox,
            [
                {
                    "message_id": message.message_id,
                    "exchange": message.exchange,
                    "routing_key": message.routing_key,
                    "body": message.body,
                    "correlation_id": message.correlation_id,
                    "created_at": now,
                }
                for message in messages
            ],
        )

    def holds(self, session: Session, message_id: str) -> bool:
        """Whether the outbox has a message of this id, sent or not (until it is pruned)."""
        found = session.execute(
            select(self.outbox.c.id).where(self.outbox.c.message_id == message_id)
        ).first()
        return found is not None

    def pending(self, session: Session, limit: int = 100) -> list[Outgoing]:
        rows = session.execute(
            select(self.outbox)
            .where(self.outbox.c.sent_at.is_(None))
            .order_by(self.outbox.c.id)
            .limit(limit)
        ).all()
        return self._outgoing(rows)

    def claim_pending(self, session: Session, limit: int) -> list[Outgoing]:
        """Up to `limit` unsent rows, oldest first, now this session's and locked until it
        ends; rows another relay (a replica on the same database) holds are skipped, in the
        same statement. PostgreSQL's row locks; SQLite renders no FOR UPDATE, so one
        process per SQLite file."""
        rows = session.execute(
            select(self.outbox)
            .where(self.outbox.c.sent_at.is_(None))
            .order_by(self.outbox.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        return self._outgoing(rows)

    @staticmethod
    def _outgoing(rows: Sequence[Row[Any]]) -> list[Outgoing]:
        return [
            Outgoing(
                message_id=r.message_id,
                exchange=r.exchange,
                routing_key=r.routing_key,
                body=r.body,
                correlation_id=r.correlation_id,
                id=r.id,
            )
            for r in rows
        ]

    def backlog(self, session: Session) -> tuple[int, datetime | None]:
        """How many messages wait to be published, and when the oldest was committed; one
        query, on the index of `sent_at`."""
        row = session.execute(
            select(func.count(), func.min(self.outbox.c.created_at)).where(
                self.outbox.c.sent_at.is_(None)
            )
        ).one()
        return int(row[0]), row[1]

    def mark_sent(self, session: Session, *outbox_ids: int) -> None:
        """One statement for them all: a relay marks a whole batch of confirms at once."""
        if outbox_ids:
            session.execute(
                update(self.outbox).where(self.outbox.c.id.in_(outbox_ids)).values(sent_at=utcnow())
            )

    def mark_failed(self, session: Session, error: str, *outbox_ids: int) -> None:
        if outbox_ids:
            session.execute(
                update(self.outbox).where(self.outbox.c.id.in_(outbox_ids)).values(last_error=error)
            )

    def prune(self, session: Session, sent_before: datetime, processed_before: datetime) -> int:
        """Forget published messages and old message ids; returns how many rows went."""
        sent: CursorResult[Any] = session.execute(  # type: ignore[assignment]
            delete(self.outbox).where(self.outbox.c.sent_at < sent_before)
        )
        seen: CursorResult[Any] = session.execute(  # type: ignore[assignment]
            delete(self.inbox).where(self.inbox.c.processed_at < processed_before)
        )
        return sent.rowcount + seen.rowcount
