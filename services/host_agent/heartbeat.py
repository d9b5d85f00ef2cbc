"""The agent's heartbeat: it is alive, with the digest of what it holds (and, when that
changed, the inventory first)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from directdl.bus.dispatch import inject
from directdl.contracts import host as msg
from directdl.runtime.service import Service
from host_agent import inventory
from host_agent.inventory import SentInventory
from host_agent.truststore import TrustStore
from host_agent.uow import AgentUnitOfWork

TIMER = "heartbeat"
# The background work of an agent that stops cleanly: a last heartbeat, saying Down.
DOWN = "heartbeat.down"


def beat(
    uow: AgentUnitOfWork,
    host_id: str,
    zone_id: str,
    cluster_id: str,
    pool_id: str,
    pool: Path,
    truststore: TrustStore,
    heartbeat_interval: Callable[[], float],
    sent_inventory: SentInventory,
    state: msg.HostState = msg.HostState.UP,
) -> None:
    """The heartbeat timer's work: this host is `state`. When what it holds differs from the
    inventory this process last sent, the new inventory goes first, in the same transaction,
    so that it is published before the beat that carries its digest."""
    held = inventory.holdings(uow, pool_id, pool, truststore)
    digest = held.digest
    if not sent_inventory.is_current(digest):
        inventory.send(uow, held, sent_inventory, host_id, zone_id, cluster_id)
    uow.emit(
        msg.HostHeartbeat(
            host_id=host_id,
            zone_id=zone_id,
            cluster_id=cluster_id,
            state=state,
            interval_seconds=heartbeat_interval(),
            inventory_digest=digest,
            sent_at=datetime.now(UTC),
        )
    )


def going_down(dependencies: Mapping[str, Any]) -> Callable[[Service[AgentUnitOfWork]], None]:
    """The agent's last word as it stops, `beat` with the same dependencies saying Down, so
    that no deploy waits for this host until it has been silent long enough."""
    say = inject(beat, dependencies, leading=1)

    def say_down(service: Service[AgentUnitOfWork]) -> None:
        with service.transaction(DOWN) as uow:
            say(uow, state=msg.HostState.DOWN)

    return say_down
