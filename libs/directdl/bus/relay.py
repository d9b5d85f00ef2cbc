"""The outbox relay's database side: claim a batch of rows, then record what became of each."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pika
import structlog
from prometheus_client.metrics_core import Metric
from sqlalchemy.orm import Session, sessionmaker

from directdl.bus.publisher import properties
from directdl.bus.store import MessageStore, Outgoing, utcnow
from directdl.contracts.base import REPLY_TYPE
from directdl.runtime import metrics

log = structlog.get_logger(__name__)

# The rows one flush claims, publishes and marks: confirms are awaited for all at once.
BATCH = 500
# How long a published message stays in the outbox, and a processed message_id in the inbox.
# A message_id re-sent after INBOX_RETENTION is treated as new.
OUTBOX_RETENTION = timedelta(days=1)
INBOX_RETENTION = timedelta(days=7)


@dataclass
class Claim:
    """Rows taken from the outbox, held by `session` (locked, on PostgreSQL) until `settle`."""

    session: Session
    rows: list[Outgoing]
    # What the broker answered, by outbox id: a return (unroutable) before its confirm.
    unrouted: dict[int, str] = field(default_factory=dict)
    refused: dict[int, str] = field(default_factory=dict)
    confirmed: set[int] = field(default_factory=set)


class OutboxRelay:
    """At least once: a crash between the confirms and the commit that marks the batch sent,
    or a connection lost before the confirms arrived, re-sends those messages with the same
    message_ids, which consumers' inboxes and the bus client recognise. Replicas relaying one
    PostgreSQL database each claim their rows before publishing them, so that nothing but a
    failure publishes a row twice; see docs/delivery.md. `RelayThread` does the publishing."""

    def __init__(
        self,
        store: MessageStore,
        sessions: sessionmaker[Session],
        app_id: str,
        user_id: str | None = None,
    ) -> None:
        self.store = store
        self.sessions = sessions
        self.app_id = app_id
        self.user_id = user_id

    def claim(self, limit: int = BATCH) -> Claim | None:
        """The oldest pending rows no other relay holds, or None when there are none."""
        session = self.sessions()
        try:
            rows = self.store.claim_pending(session, limit)
        except BaseException:
            session.close()
            raise
        if not rows:
            session.close()
            return None
        return Claim(session, rows)

    def settle(self, claim: Claim) -> int:
        """Mark the confirmed rows sent, in one statement, and keep the refused ones pending
        with their error; returns how many were sent. Ends the claim either way."""
        session = claim.session
        try:
            sent = [row.id for row in claim.rows if row.id in claim.confirmed]
            # One statement per distinct error (per routing key nobody listens to), not per row.
            by_error: dict[str, list[int]] = {}
            for outbox_id, error in {**claim.unrouted, **claim.refused}.items():
                by_error.setdefault(error, []).append(outbox_id)
            for error, ids in by_error.items():
                self.store.mark_failed(session, error, *ids)
            self.store.mark_sent(session, *(i for i in sent if i is not None))
            session.commit()
            return len(sent)
        finally:
            session.close()

    @staticmethod
    def abandon(claim: Claim) -> None:
        """The connection went before the confirms came: every row stays pending."""
        claim.session.rollback()
        claim.session.close()

    def publication(self, message: Outgoing) -> tuple[pika.BasicProperties, bool]:
        """The properties of the row's message, and whether it is mandatory: replies are not,
        since RabbitMQ returns direct reply-to messages it did deliver when they are."""
        is_reply = message.exchange == ""
        props = properties(
            message.message_id,
            REPLY_TYPE if is_reply else message.routing_key,
            app_id=self.app_id,
            correlation_id=message.correlation_id,
            user_id=self.user_id,
        )
        return props, not is_reply

    def gauges(self) -> list[Metric]:
        """The outbox's backlog now, read when /metrics is: what waits, and for how long."""
        with self.sessions() as session:
            pending, oldest = self.store.backlog(session)
        age = 0.0 if oldest is None else max(0.0, (utcnow() - oldest).total_seconds())
        return [
            metrics.outbox_pending.family([((self.app_id,), pending)]),
            metrics.outbox_oldest_age.family([((self.app_id,), age)]),
        ]

    def prune(self) -> None:
        now = utcnow()
        with self.sessions() as session:
            removed = self.store.prune(session, now - OUTBOX_RETENTION, now - INBOX_RETENTION)
            session.commit()
        if removed:
            log.debug("outbox.pruned", rows=removed)
