"""Records the messages matching a routing-key pattern, so tests can wait for events."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import pika

from directdl.bus.connection import connect
from directdl.bus.topology import Topology


@dataclass(frozen=True)
class Recorded:
    routing_key: str
    body: dict[str, Any]
    properties: pika.BasicProperties


class MessageRecorder:
    """An exclusive queue bound to `patterns` on the exchange; use as a context manager."""

    def __init__(self, url: str, topology: Topology, *patterns: str) -> None:
        self._connection = connect(url, "test-recorder")
        self._channel = self._connection.channel()
        topology.declare_exchanges(self._channel)
        result = self._channel.queue_declare("", exclusive=True, auto_delete=True)
        self.queue = result.method.queue
        for pattern in patterns or ("#",):
            self._channel.queue_bind(self.queue, topology.exchange, routing_key=pattern)
        self.messages: list[Recorded] = []
        self._channel.basic_consume(self.queue, self._on_message, auto_ack=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._connection.is_open:
            self._connection.close()

    def _on_message(self, _ch: Any, method: Any, props: pika.BasicProperties, body: bytes) -> None:
        self.messages.append(Recorded(method.routing_key, json.loads(body), props))

    def poll(self, seconds: float = 0.0) -> None:
        self._connection.process_data_events(time_limit=seconds)

    def expect(self, routing_key: str, timeout: float = 10.0, count: int = 1) -> list[Recorded]:
        """Wait until `count` messages with this routing key have arrived; return them."""
        deadline = time.monotonic() + timeout
        while True:
            found = [m for m in self.messages if m.routing_key == routing_key]
            if len(found) >= count:
                return found
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = sorted({m.routing_key for m in self.messages})
                raise AssertionError(
                    f"expected {count} {routing_key!r} within {timeout:g} s, got {len(found)}; "
                    f"saw {seen}"
                )
            self.poll(min(remaining, 0.1))
