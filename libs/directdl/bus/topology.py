"""Names and declarations: the topic exchange, service queues, dead-lettering."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pika.adapters.blocking_connection import BlockingChannel

from directdl.contracts.base import EXCHANGE

# RabbitMQ 3.x sets no default delivery limit on quorum queues. The consumer gives up on its
# own after `max_attempts`; this limit is the backstop for a message that crashes the process.
DELIVERY_LIMIT = 10


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
        channel.queue_declare(dead, durable=True, arguments={"x-queue-type": "quorum"})
        channel.queue_bind(dead, self.dead_letter_exchange, routing_key=dead)
        channel.queue_declare(
            queue,
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-delivery-limit": DELIVERY_LIMIT,
                "x-dead-letter-exchange": self.dead_letter_exchange,
                "x-dead-letter-routing-key": dead,
            },
        )
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
        """Declare `<service>.<purpose>` (quorum) with its dead-letter queue, and bind it."""
        self.declare_exchanges(channel)
        dead = self.dead_letter_queue(service)
        channel.queue_declare(dead, durable=True, arguments={"x-queue-type": "quorum"})
        channel.queue_bind(dead, self.dead_letter_exchange, routing_key=dead)
        name = self.queue(service, purpose)
        arguments: dict[str, Any] = {
            "x-queue-type": "quorum",
            "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-exchange": self.dead_letter_exchange,
            "x-dead-letter-routing-key": dead,
        }
        if single_active_consumer:
            arguments["x-single-active-consumer"] = True
        channel.queue_declare(name, durable=True, arguments=arguments)
        for key in bindings:
            channel.queue_bind(name, self.exchange, routing_key=key)
        return name


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
