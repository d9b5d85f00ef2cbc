"""A BusClient that keeps every reply delivery, copies included, for tests that count them."""

from __future__ import annotations

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.spec import Basic

from directdl.bus.client import BusClient
from directdl.bus.topology import Topology


class EveryReply(BusClient):
    """Records (correlation_id, message_id) of each reply as it arrives, before BusClient
    drops a copy it has seen."""

    def __init__(self, url: str, topology: Topology, app_id: str = "test-every-reply") -> None:
        self.deliveries: list[tuple[str | None, str | None]] = []
        super().__init__(url, topology, app_id=app_id)

    def _on_reply(
        self,
        channel: BlockingChannel,
        method: Basic.Deliver,
        props: pika.BasicProperties,
        body: bytes,
    ) -> None:
        self.deliveries.append((props.correlation_id, props.message_id))
        super()._on_reply(channel, method, props, body)

    def replies_to(self, correlation_id: str) -> list[str | None]:
        """The message_ids of every reply delivered for one request."""
        return [mid for cid, mid in self.deliveries if cid == correlation_id]
