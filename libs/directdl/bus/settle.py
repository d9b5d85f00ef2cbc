"""What becomes of a delivery that failed: a copy that retries it later, or its dead letter."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import pika
import structlog
from pika.adapters.blocking_connection import BlockingChannel

from directdl.backoff import Backoff
from directdl.bus.delivery import Delivery, Outcome, Verdict, dead_letter_headers, retry_headers
from directdl.bus.publisher import ConfirmingPublisher, PublishError
from directdl.bus.topology import DELIVERY_LIMIT, Topology
from directdl.runtime import metrics

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Held:
    """A delivery not yet acked, with what it takes to copy it: from `queue` on `channel`."""

    channel: BlockingChannel
    tag: int
    queue: str
    props: pika.BasicProperties
    body: bytes
    delivery: Delivery


@dataclass(frozen=True)
class Settler:
    """Sends the copies and then acks, on the I/O thread, which owns the channels. Each copy
    is ours to send: it carries our broker `user_id`, and the sender it stands for in a
    header, which `delivery.received` believes from us only."""

    topology: Topology
    service: str
    user: str
    backoff: Backoff
    # Each retry is a new message to the queue, whose own delivery limit never sees them all:
    # the same backstop, for work that fails before it can even give up.
    limit: int = DELIVERY_LIMIT

    def settle_failure(self, held: Held, publisher: ConfirmingPublisher, outcome: Outcome) -> None:
        if outcome.verdict is Verdict.RETRY and held.delivery.attempt < self.limit:
            self._retry_later(held, publisher, outcome.error)
        else:
            self._dead_letter(held, publisher, outcome.error)

    def _retry_later(self, held: Held, publisher: ConfirmingPublisher, error: str) -> None:
        # A requeued message would come straight back, and sleeping first would hold a
        # worker and the message both. The copy waits out its back-off in the broker instead
        # (see topology.RETRY_ARGUMENTS). The original is acked only once the copy is
        # confirmed: a crash in between redelivers it as well, and the inbox keeps one effect.
        delivery = held.delivery
        delay = self.backoff.delay(delivery.attempt)
        props = self._copy(held.props, retry_headers(delivery, error, self.service))
        props.expiration = str(round(delay * 1000))
        try:
            publisher.publish("", self.topology.retry_queue(held.queue), held.body, props)
        except PublishError:
            # Then it comes back at once; the quorum queue's delivery count still bounds it.
            log.exception("message.retry_publish_failed", message_id=delivery.message_id)
            held.channel.basic_nack(held.tag, requeue=True)
            return
        log.debug(
            "message.retry_scheduled",
            message_id=delivery.message_id,
            attempt=delivery.attempt + 1,
            retry_in_s=round(delay, 3),
        )
        held.channel.basic_ack(held.tag)

    def _dead_letter(self, held: Held, publisher: ConfirmingPublisher, error: str) -> None:
        # Publishing the copy ourselves, rather than rejecting, puts the reason in a header.
        delivery = held.delivery
        props = self._copy(held.props, dead_letter_headers(delivery, error, self.service))
        try:
            publisher.publish(
                self.topology.dead_letter_exchange,
                self.topology.dead_letter_queue(self.service),
                held.body,
                props,
            )
        except PublishError:
            log.exception("message.dead_letter_publish_failed")
            held.channel.basic_nack(held.tag, requeue=False)
            return
        log.warning("message.dead_lettered", message_id=delivery.message_id, error=error)
        metrics.dead_lettered.labels(self.service, delivery.routing_key).inc()
        held.channel.basic_ack(held.tag)

    def _copy(
        self, props: pika.BasicProperties, headers: dict[str, object]
    ) -> pika.BasicProperties:
        # The broker refuses a publish that names another user: the copy names ours.
        copied = copy.copy(props)
        copied.headers = headers
        copied.user_id = self.user
        copied.expiration = None  # a sender's TTL was for the original, not for our copy
        copied.delivery_mode = pika.DeliveryMode.Persistent.value
        return copied
