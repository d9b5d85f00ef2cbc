"""Per-test names on a shared broker, and removing what a test declared.

Tests that run host agents use the ids in HOST_IDS, so that their queues are removed too."""

from __future__ import annotations

import uuid

from directdl.bus.connection import connect
from directdl.bus.tables import service_tables
from directdl.bus.topology import Topology
from directdl.contracts.senders import CENTRAL

HOST_IDS = ("host-1", "host-2", "host-3")
# Every queue left behind holds the broker's file descriptors (a quorum queue several), and
# a suite that leaks them runs the shared broker out of them.
SERVICES = (
    *CENTRAL,
    "test",
    *(f"host-agent-{host_id}" for host_id in HOST_IDS),
)
PURPOSES = ("commands", "events")
SHARED_QUEUES = ("settings.commands", "settings.commands.dead")


def unique_topology() -> Topology:
    name = f"test-{uuid.uuid4().hex[:10]}"
    return Topology(exchange=name, queue_prefix=f"{name}.")


def remove_topology(url: str, topology: Topology) -> None:
    """Delete the exchanges and every queue a service of this topology may have declared."""
    connection = connect(url, "test-cleanup")
    try:
        channel = connection.channel()
        # A batched queue is named after its purpose in the service's table.
        purposes = {*PURPOSES, *(p for t in service_tables().values() for p in t.queues)}
        for service in SERVICES:
            for purpose in sorted(purposes):
                channel.queue_delete(topology.queue(service, purpose))
                channel.queue_delete(topology.retry_queue(topology.queue(service, purpose)))
            channel.queue_delete(topology.dead_letter_queue(service))
        for queue in SHARED_QUEUES:
            channel.queue_delete(topology.queue_prefix + queue)
            channel.queue_delete(topology.retry_queue(topology.queue_prefix + queue))
        channel.exchange_delete(topology.exchange)
        channel.exchange_delete(topology.dead_letter_exchange)
    finally:
        connection.close()
