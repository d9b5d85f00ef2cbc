"""The outbox relay: publishes what handlers committed, so no event is lost to a crash."""

from __future__ import annotations

from datetime import timedelta
from enum import Enum

import structlog
from prometheus_client.metrics_core import Metric
from sqlalchemy.orm import Session, sessionmaker

from directdl.bus.publisher import ConfirmingPublisher, PublishError, Unroutable, properties
from directdl.bus.store import MessageStore, Outgoing, utcnow
from directdl.contracts.base import REPLY_TYPE
from directdl.runtime import metrics

log = structlog.get_logger(__name__)

BATCH = 100
# How long a published message stays in the outbox, and a processed message_id in the inbox.
# A message_id re-sent after INBOX_RETENTION is treated as new.
OUTBOX_RETENTION = timedelta(days=1)
INBOX_RETENTION = timedelta(days=7)


class Relayed(Enum):
    """What became of one outbox row in a flush."""

    SENT = "sent"  # confirmed (or unroutable), and marked sent
    REFUSED = "refused"  # nacked: kept, with the error, for the next flush
    SKIPPED = "skipped"  # another relay on the same database holds it or has sent it


class OutboxRelay:
    """At least once: a crash between a publish's confirm and its commit, or a connection lost
    before the confirm arrived, re-sends a message with the same message_id, which consumers'
    inboxes and the bus client recognise. Replicas relaying one PostgreSQL database each claim
    a row before publishing it, so that nothing but a failure publishes a row twice; see
    docs/delivery.md."""

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

    def flush(self, publisher: ConfirmingPublisher) -> int:
        """Publish everything pending; returns how many went out. Stops at the first refusal."""
        sent = 0
        while True:
            with self.sessions() as session:
                batch = self.store.pending(session, BATCH)
            taken = 0
            for message in batch:
                relayed = self._relay_one(publisher, message)
                if relayed is Relayed.REFUSED:
                    return sent
                if relayed is Relayed.SENT:
                    sent += 1
                    taken += 1
            # A batch another relay holds entirely would be read again at once, and again.
            if len(batch) < BATCH or not taken:
                return sent

    def gauges(self) -> list[Metric]:
        """The outbox's backlog now, read when /metrics is: what waits, and for how long."""
        with self.sessions() as session:
            pending, oldest = self.store.backlog(session)
        age = 0.0 if oldest is None else max(0.0, (utcnow() - oldest).total_seconds())
        return [
            metrics.outbox_pending.family([((self.app_id,), pending)]),
            metrics.outbox_oldest_age.family([((self.app_id,), age)]),
        ]

    def _relay_one(self, publisher: ConfirmingPublisher, message: Outgoing) -> Relayed:
        assert message.id is not None
        with self.sessions() as session:
            # Locked until this session commits: a replica's relay that read the same pending
            # rows skips this one instead of publishing it too. A failure here rolls back, and
            # the row stays pending.
            if not self.store.claim(session, message.id):
                return Relayed.SKIPPED
            error = None
            try:
                self._publish(publisher, message)
            except Unroutable as err:
                # Replies whose caller has gone, events nobody listens to: the broker took them
                # and routed them nowhere. Say so, and don't resend forever.
                log.debug("outbox.unrouted", routing_key=message.routing_key, error=str(err))
                error = str(err)
            except PublishError as err:
                log.warning("outbox.refused", routing_key=message.routing_key, error=str(err))
                self.store.mark_failed(session, message.id, str(err))
                session.commit()
                return Relayed.REFUSED
            # Marked one by one, so a crash re-sends at most the message in flight.
            if error:
                self.store.mark_failed(session, message.id, error)
            self.store.mark_sent(session, message.id)
            session.commit()
        return Relayed.SENT

    def prune(self) -> None:
        now = utcnow()
        with self.sessions() as session:
            removed = self.store.prune(session, now - OUTBOX_RETENTION, now - INBOX_RETENTION)
            session.commit()
        if removed:
            log.debug("outbox.pruned", rows=removed)

    def _publish(self, publisher: ConfirmingPublisher, message: Outgoing) -> None:
        is_reply = message.exchange == ""
        publisher.publish(
            message.exchange,
            message.routing_key,
            message.body,
            properties(
                message.message_id,
                REPLY_TYPE if is_reply else message.routing_key,
                app_id=self.app_id,
                correlation_id=message.correlation_id,
                user_id=self.user_id,
            ),
            # RabbitMQ returns direct reply-to messages it did deliver when they are mandatory.
            mandatory=not is_reply,
        )
