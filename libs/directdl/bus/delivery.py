"""What arrives from the bus, independent of pika, and what a consumer does with it."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


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

    @property
    def attempt(self) -> int:
        """1 on first delivery; quorum queues count redeliveries in `x-delivery-count`."""
        return 1 + int(self.headers.get("x-delivery-count", 0) or 0)


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
