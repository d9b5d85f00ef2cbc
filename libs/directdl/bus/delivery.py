"""What arrives from the bus, independent of pika, and what a consumer does with it."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

# Quorum queues count the redeliveries of one copy (a nack, a consumer that died).
DELIVERY_COUNT = "x-delivery-count"
# What a consumer writes on the copies it republishes itself, for a delayed retry or to its
# dead-letter queue: the copy carries the consumer's own user_id and comes back by a queue's
# name, so the original sender and routing key travel here.
ATTEMPT = "x-directdl-attempt"  # the attempt a retry copy is; a dead letter starts over
ATTEMPTS = "x-directdl-attempts"  # on a dead letter: how many were made
ERROR = "x-directdl-error"
ORIGINAL_ROUTING_KEY = "x-directdl-original-routing-key"
ORIGINAL_USER_ID = "x-directdl-original-user-id"
SERVICE = "x-directdl-service"


@dataclass(frozen=True)
class Delivery:
    routing_key: str
    body: bytes
    message_id: str | None = None
    correlation_id: str | None = None
    reply_to: str | None = None
    content_type: str | None = None
    # The broker user that published it, as RabbitMQ validated it; None when not given.
    user_id: str | None = None
    headers: Mapping[str, Any] = field(default_factory=dict)
    # The attempt this copy started as: 1, or what a consumer's own retry copy says.
    first_attempt: int = 1

    @property
    def attempt(self) -> int:
        """1 on first delivery, counting both delayed retries and plain redeliveries."""
        return self.first_attempt + _count(self.headers.get(DELIVERY_COUNT), 0)


def received(
    routing_key: str,
    body: bytes,
    *,
    message_id: str | None,
    correlation_id: str | None,
    reply_to: str | None,
    content_type: str | None,
    user_id: str | None,
    headers: Mapping[str, Any] | None,
    republishers: Collection[str],
) -> Delivery:
    """The delivery as its first sender sent it. A copy a consumer republished names the
    original routing key, sender and attempt in headers, believed only when RabbitMQ vouches
    (`user_id`) that one of `republishers` sent it; otherwise anyone able to publish to a
    queue by name could pick the handler and the sender of its message."""
    headers = dict(headers or {})
    original = headers.get(ORIGINAL_ROUTING_KEY)
    first_attempt = 1
    if user_id in republishers and isinstance(original, str | bytes):
        routing_key = _text(original) or routing_key
        user_id = _text(headers.get(ORIGINAL_USER_ID)) or None
        first_attempt = _count(headers.get(ATTEMPT), 1)
    return Delivery(
        routing_key,
        body,
        message_id=message_id,
        correlation_id=correlation_id,
        reply_to=reply_to,
        content_type=content_type,
        user_id=user_id,
        headers=headers,
        first_attempt=first_attempt,
    )


def retry_headers(delivery: Delivery, error: str, service: str) -> dict[str, Any]:
    """The headers of the copy that is the next attempt of `delivery`."""
    return _copy_headers(delivery, error, service) | {ATTEMPT: delivery.attempt + 1}


def dead_letter_headers(delivery: Delivery, error: str, service: str) -> dict[str, Any]:
    """The headers of the dead letter of `delivery`: why, after how many attempts. A replay
    of it to the queue starts again from the first attempt."""
    return _copy_headers(delivery, error, service) | {ATTEMPTS: delivery.attempt}


def _copy_headers(delivery: Delivery, error: str, service: str) -> dict[str, Any]:
    # The delivery count is the old copy's; the broker starts the new copy's from nothing.
    headers = {k: v for k, v in delivery.headers.items() if k not in (DELIVERY_COUNT, ATTEMPT)}
    return headers | {
        ERROR: error[:1000],
        ORIGINAL_ROUTING_KEY: delivery.routing_key,
        ORIGINAL_USER_ID: delivery.user_id or "",
        SERVICE: service,
    }


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value or "")


def _count(value: Any, default: int) -> int:
    # A header is whatever a sender wrote; a nonsense count is no count at all.
    try:
        return max(default, int(value))
    except (TypeError, ValueError):
        return default


class Verdict(Enum):
    ACK = "ack"
    DEAD_LETTER = "dead-letter"
    RETRY = "retry"


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    error: str = ""


ACKED = Outcome(Verdict.ACK)


def new_message_id() -> str:
    return str(uuid.uuid4())
