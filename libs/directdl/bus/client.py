"""A bus client for the CLI and tests: send a command, wait for its reply; publish anything."""

from __future__ import annotations

import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import ChannelClosedByBroker
from pika.spec import Basic

from directdl.bus.connection import broker_user, connect
from directdl.bus.delivery import new_message_id
from directdl.bus.publisher import ConfirmingPublisher, Unroutable, properties
from directdl.bus.topology import Topology
from directdl.contracts.base import Command
from directdl.contracts.reply import Reply

DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"
NOT_FOUND = 404
# How many message ids a client remembers, to know a copy: far more than arrive within the
# time a relay takes to re-send one after a failure.
REMEMBERED = 10_000

# stdlib, not structlog: unconfigured (the CLI) it prints nothing below WARNING, where
# structlog's default would print the debug line to the CLI's stdout, into its JSON.
log = logging.getLogger(__name__)


class ReplyTimeout(TimeoutError):
    """No reply arrived in time; the command may still take effect later."""


class BusClient:
    """One connection and one channel, used from one thread. Replies use direct reply-to."""

    def __init__(self, url: str, topology: Topology | None = None, app_id: str = "directdl-cli"):
        self.topology = topology or Topology()
        self.app_id = app_id
        self.user_id = broker_user(url)
        self._connection = connect(url, app_id)
        self._replies: dict[str, Reply] = {}
        self._received: OrderedDict[str, None] = OrderedDict()
        self._open_channel()

    def _open_channel(self) -> None:
        self._channel: BlockingChannel = self._connection.channel()
        self._channel.basic_consume(DIRECT_REPLY_TO, self._on_reply, auto_ack=True)
        self._publisher = ConfirmingPublisher(self._channel)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._connection.is_open:
            self._connection.close()

    def call(self, command: Command, timeout: float = 30.0, message_id: str | None = None) -> Reply:
        body = command.model_dump_json(exclude_none=True).encode()
        return self.call_raw(command.routing_key, body, timeout=timeout, message_id=message_id)

    def call_raw(
        self,
        routing_key: str,
        body: bytes,
        *,
        timeout: float = 30.0,
        message_id: str | None = None,
        correlation_id: str | None = None,
        content_type: str | None = None,
    ) -> Reply:
        """Send any bytes as a command and wait for the one reply it gets."""
        correlation_id = correlation_id or str(uuid.uuid4())
        self.publish(
            routing_key,
            body,
            message_id=message_id,
            correlation_id=correlation_id,
            reply_to=DIRECT_REPLY_TO,
            content_type=content_type,
        )
        return self.wait_reply(correlation_id, timeout, routing_key)

    def watch(self, patterns: tuple[str, ...], on_message: Callable[[str, bytes], None]) -> None:
        """Also receive what is published under these patterns, while waiting for replies."""
        self.watch_senders(patterns, lambda key, body, _sender: on_message(key, body))

    def watch_senders(
        self, patterns: tuple[str, ...], on_message: Callable[[str, bytes, str | None], None]
    ) -> None:
        """As `watch`, with each message's sender: its `user_id`, which the broker vouches
        for, so that what a message claims about who sent it can be checked."""
        queue = self._channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
        for pattern in patterns:
            self._channel.queue_bind(queue, self.topology.exchange, routing_key=pattern)

        def deliver(
            _c: BlockingChannel, method: Basic.Deliver, props: pika.BasicProperties, body: bytes
        ) -> None:
            if self._first(props):
                on_message(method.routing_key, body, props.user_id)

        self._channel.basic_consume(queue, deliver, auto_ack=True)

    def pump(self, seconds: float) -> None:
        """Deliver what has arrived (watched messages, replies) for up to `seconds`."""
        self._connection.process_data_events(time_limit=seconds)

    def wait_reply(self, correlation_id: str, timeout: float, what: str = "command") -> Reply:
        deadline = time.monotonic() + timeout
        while correlation_id not in self._replies:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ReplyTimeout(f"no reply to {what} within {timeout:g} s")
            self._connection.process_data_events(time_limit=min(remaining, 0.5))
        return self._replies.pop(correlation_id)

    def publish(
        self,
        routing_key: str,
        body: bytes,
        *,
        message_id: str | None = None,
        correlation_id: str | None = None,
        reply_to: str | None = None,
        content_type: str | None = None,
        headers: dict[str, Any] | None = None,
    ) -> str:
        """Publish to the exchange with confirms and `mandatory`; returns the message_id."""
        message_id = message_id or new_message_id()
        props = properties(
            message_id,
            routing_key,
            app_id=self.app_id,
            correlation_id=correlation_id,
            reply_to=reply_to,
            headers=headers,
            user_id=self.user_id,
        )
        if content_type is not None:
            props.content_type = content_type
        try:
            self._publisher.publish(self.topology.exchange, routing_key, body, props)
        except ChannelClosedByBroker as err:
            self._open_channel()
            if err.reply_code == NOT_FOUND:
                raise Unroutable(
                    f"exchange {self.topology.exchange!r} does not exist: no service has "
                    f"started on this broker, so nothing consumes {routing_key!r}"
                ) from err
            raise
        return message_id

    def _on_reply(
        self,
        _channel: BlockingChannel,
        _method: Basic.Deliver,
        props: pika.BasicProperties,
        body: bytes,
    ) -> None:
        if props.correlation_id and self._first(props):
            self._replies[props.correlation_id] = Reply.model_validate_json(body)
            # A reply that came after its caller stopped waiting is never taken: a long-lived
            # client (the gateway's) keeps only the newest of those.
            while len(self._replies) > REMEMBERED:
                self._replies.pop(next(iter(self._replies)))

    def _first(self, props: pika.BasicProperties) -> bool:
        """False for a copy: a message_id already received. The outbox relay is at least once,
        and after a failure re-sends a message with its message_id (docs/delivery.md); a
        second answer has one of its own, and is not hidden."""
        message_id = props.message_id
        if not message_id:
            return True
        if message_id in self._received:
            log.debug(
                "bus client dropped a copy: message_id=%s correlation_id=%s type=%s",
                message_id,
                props.correlation_id,
                props.type,
            )
            return False
        self._received[message_id] = None
        if len(self._received) > REMEMBERED:
            self._received.popitem(last=False)
        return True
