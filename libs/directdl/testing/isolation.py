"""Per-test names on a shared broker, and removing what a test declared."""

from __future__ import annotations

import uuid

from directdl.bus.connection import connect
from directdl.bus.topology import Topology

SERVICES = ("registration", "certificate", "sync-scheduler", "host-agent", "test")
PURPOSES = ("commands", "events")


def unique_topology() -> Topology:
    name = f"test-{uuid.uuid4().hex[:10]}"
    return Topology(exchange=name, queue_prefix=f"{name}.")


def remove_topology(url: str, topology: Topology, extra_queues: tuple[str, ...] = ()) -> None:
    """Delete the exchanges and every queue a service of this topology may have declared."""
    connection = connect(url, "test-cleanup")
    try:
        channel = connection.channel()
        for service in SERVICES:
            for purpose in PURPOSES:
                channel.queue_delete(topology.queue(service, purpose))
            channel.queue_delete(topology.dead_letter_queue(service))
        for queue in extra_queues:
            channel.queue_delete(queue)
        channel.exchange_delete(topology.exchange)
        channel.exchange_delete(topology.dead_letter_exchange)
    finally:
        connection.close()
