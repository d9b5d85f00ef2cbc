"""Names and declarations: the topic exchange, service queues, delayed retries, dead-lettering."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pika.adapters.blocking_connection import BlockingChannel

from directdl.contracts.base import EXCHANGE

# RabbitMQ 3.x sets no default delivery limit on quorum queues. The consumer gives up on its
# own after `max_attempts`; this limit is the backstop for a message that crashes the process.
DELIVERY_LIMIT = 10

# Every quorum queue keeps a replica on three nodes of a cluster (on fewer, when the cluster
# has fewer), so that it survives the loss of one. RabbitMQ reads this only when it creates a
# queue, and refuses to redeclare an existing queue with a different value: a queue made by
# a directdl that did not send it must be deleted (once drained) to take it.
QUORUM_GROUP_SIZE = 3
QUORUM: dict[str, Any] = {
    "x-queue-type": "quorum",
    "x-quorum-initial-group-size": QUORUM_GROUP_SIZE,
}

# Where a delayed retry waits: nobody consumes `<queue>.retry`; each copy carries its back-off
# as a per-message `expiration`, and on expiry the broker dead-letters it back to `<queue>`
# through the default exchange. Quorum, like the queues it serves: on RabbitMQ 3.10 (Debian
# 12's) quorum queues honour per-message TTL, and they can dead-letter at least once, keeping
# the copy until `<queue>` has confirmed it (this needs `reject-publish` overflow), so a
# waiting retry survives a broker restart and is never dropped on its way back. As on classic
# queues, messages expire only at the head: a copy may wait behind one with a longer delay,
# at most the back-off cap longer than it asked, which a retry can afford.
RETRY_ARGUMENTS: dict[str, Any] = QUORUM | {
    "x-dead-letter-exchange": "",
    "x-dead-letter-strategy": "at-least-once",
    "x-overflow": "reject-publish",
}


@dataclass(frozen=True)
class Topology:
    """Everything is named from these two, so a test can isolate itself with a prefix."""

    exchange: str = EXCHANGE
    queue_prefix: str = ""

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.exchange}.dlx"

    def queue(self, service: str, purpose: str) -> str:
        return f"{self.queue_prefix}{service}.{purpose}"

    def dead_letter_queue(self, service: str) -> str:
        return f"{self.queue_prefix}{service}.dead"

    @staticmethod
    def retry_queue(queue: str) -> str:
        """Where the delayed retries of `queue`'s messages wait; published to by name."""
        return f"{queue}.retry"

    def declare_exchanges(self, channel: BlockingChannel) -> None:
        channel.exchange_declare(self.exchange, exchange_type="topic", durable=True)
        channel.exchange_declare(self.dead_letter_exchange, exchange_type="direct", durable=True)

    def declare_shared_queue(
        self, channel: BlockingChannel, name: str, bindings: Iterable[str]
    ) -> str:
        """A queue every service consumes from, taking turns: `settings.commands` is one.
        Every service declares it with the same arguments, or RabbitMQ would refuse."""
        self.declare_exchanges(channel)
        queue = f"{self.queue_prefix}{name}"
        dead = f"{queue}.dead"
        channel.queue_declare(dead, durable=True, arguments=QUORUM)
        channel.queue_bind(dead, self.dead_letter_exchange, routing_key=dead)
        channel.queue_declare(
            queue,
            durable=True,
            arguments=QUORUM
            | {
                "x-delivery-limit": DELIVERY_LIMIT,
                "x-dead-letter-exchange": self.dead_letter_exchange,
                "x-dead-letter-routing-key": dead,
            },
        )
        self._declare_retry_queue(channel, queue)
        for key in bindings:
            channel.queue_bind(queue, self.exchange, routing_key=key)
        return queue

    def declare_service_queue(
        self,
        channel: BlockingChannel,
        service: str,
        purpose: str,
        bindings: Iterable[str],
        single_active_consumer: bool = False,
    ) -> str:
        """Declare `<service>.<purpose>` (quorum) with its retry and dead-letter queues, and
        bind it."""
        self.declare_exchanges(channel)
        dead = self.dead_letter_queue(service)
        channel.queue_declare(dead, durable=True, arguments=QUORUM)
        channel.queue_bind(dead, self.dead_letter_exchange, routing_key=dead)
        name = self.queue(service, purpose)
        arguments: dict[str, Any] = QUORUM | {
            "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-exchange": self.dead_letter_exchange,
            "x-dead-letter-routing-key": dead,
        }
        if single_active_consumer:
            arguments["x-single-active-consumer"] = True
        channel.queue_declare(name, durable=True, arguments=arguments)
        self._declare_retry_queue(channel, name)
        for key in bindings:
            channel.queue_bind(name, self.exchange, routing_key=key)
        return name

    def _declare_retry_queue(self, channel: BlockingChannel, queue: str) -> None:
        arguments = RETRY_ARGUMENTS | {"x-dead-letter-routing-key": queue}
        channel.queue_declare(self.retry_queue(queue), durable=True, arguments=arguments)


def topic_matches(pattern: str, routing_key: str) -> bool:
    """AMQP topic matching: `*` is exactly one word, `#` zero or more."""
    return _match(pattern.split("."), routing_key.split("."))


def _match(pattern: list[str], words: list[str]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_match(rest, words[i:]) for i in range(len(words) + 1))
    return bool(words) and head in ("*", words[0]) and _match(rest, words[1:])
