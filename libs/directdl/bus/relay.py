"""The outbox relay: publishes what handlers committed, so no event is lost to a crash."""

from __future__ import annotations

from datetime import timedelta

import structlog
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


class OutboxRelay:
    """At least once: a crash between a publish and its commit, or two replicas relaying one
    database, re-sends a message with the same message_id, which consumers' inboxes recognise."""

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
            metrics.outbox_pending.labels(self.app_id).set(len(batch))
            for message in batch:
                if not self._relay_one(publisher, message):
                    return sent
                sent += 1
            if len(batch) < BATCH:
                return sent

    def _relay_one(self, publisher: ConfirmingPublisher, message: Outgoing) -> bool:
        assert message.id is not None
        error = None
        try:
            self._publish(publisher, message)
        except Unroutable as err:
            # Replies whose caller has gone, events nobody listens to: the broker took them and
            # routed them nowhere. Say so, and don't resend forever.
            log.info("outbox.unrouted", routing_key=message.routing_key, error=str(err))
            error = str(err)
        except PublishError as err:
            log.warning("outbox.refused", routing_key=message.routing_key, error=str(err))
            with self.sessions() as session:
                self.store.mark_failed(session, message.id, str(err))
                session.commit()
            return False
        # Marked one by one, so a crash re-sends at most the message in flight.
        with self.sessions() as session:
            if error:
                self.store.mark_failed(session, message.id, error)
            self.store.mark_sent(session, message.id)
            session.commit()
        return True

    def prune(self) -> None:
        now = utcnow()
        with self.sessions() as session:
            removed = self.store.prune(session, now - OUTBOX_RETENTION, now - INBOX_RETENTION)
            session.commit()
        if removed:
            log.info("outbox.pruned", rows=removed)

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
