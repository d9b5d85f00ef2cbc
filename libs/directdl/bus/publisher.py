"""Publishing with confirms and `mandatory`: a publish is either routed and confirmed, or raises."""

from __future__ import annotations

import time

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import NackError, UnroutableError

from directdl.contracts.base import CONTENT_TYPE


class PublishError(RuntimeError):
    """The broker did not take responsibility for the message."""


class Unroutable(PublishError):
    """No queue is bound for the routing key; the message went nowhere."""


def properties(
    message_id: str,
    message_type: str,
    *,
    app_id: str,
    correlation_id: str | None = None,
    reply_to: str | None = None,
    headers: dict[str, object] | None = None,
    user_id: str | None = None,
) -> pika.BasicProperties:
    """Every message names its sender in `user_id`: RabbitMQ refuses the publish unless that
    is the connection's own user, so consumers can believe it."""
    return pika.BasicProperties(
        content_type=CONTENT_TYPE,
        delivery_mode=pika.DeliveryMode.Persistent,
        message_id=message_id,
        type=message_type,
        timestamp=int(time.time()),
        app_id=app_id,
        correlation_id=correlation_id,
        reply_to=reply_to,
        headers=headers,
        user_id=user_id or None,
    )


class ConfirmingPublisher:
    """Wraps a channel in confirm mode. Owned by one thread, like the channel itself."""

    def __init__(self, channel: BlockingChannel) -> None:
        self.channel = channel
        self.channel.confirm_delivery()

    def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        props: pika.BasicProperties,
        mandatory: bool = True,
    ) -> None:
        try:
            self.channel.basic_publish(exchange, routing_key, body, props, mandatory=mandatory)
        except UnroutableError as err:
            where = f"exchange {exchange!r}" if exchange else "the default exchange"
            raise Unroutable(f"nothing is bound to {routing_key!r} on {where}") from err
        except NackError as err:
            raise PublishError(f"the broker refused the message for {routing_key!r}") from err
