"""The agent's heartbeat: who it is, its pool's capacity, what the pool and trust store hold."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from directdl.bus.dispatch import inject
from directdl.contracts import host as msg
from directdl.runtime.service import Service
from host_agent.truststore import TrustStore, TrustStoreError
from host_agent.uow import AgentUnitOfWork

log = structlog.get_logger(__name__)

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
    state: msg.HostState = msg.HostState.UP,
) -> None:
    """The heartbeat timer's work: this host is `state`, with what it has now."""
    usage = shutil.disk_usage(pool)
    uow.emit(
        msg.HostHeartbeat(
            host_id=host_id,
            zone_id=zone_id,
            cluster_id=cluster_id,
            state=state,
            interval_seconds=heartbeat_interval(),
            pools=[
                msg.PoolStatus(pool_id=pool_id, capacity_bytes=usage.total, free_bytes=usage.free)
            ],
            templates=[
                msg.StoredTemplate(
                    template_id=f.template_id,
                    pool_id=f.pool_id,
                    path=f.path,
                    size=f.size,
                    digest=f.digest,
                    image_digest=f.image_digest,
                    last_used_at=f.last_used_at,
                )
                for f in uow.pool.all()
            ],
            certificates=_trusted(truststore),
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


def _trusted(truststore: TrustStore) -> list[msg.TrustedCertificate]:
    """What the store really holds. An unreadable store is reported empty (and by /readyz),
    so that the host still says it is alive."""
    try:
        inventory = truststore.inventory()
    except TrustStoreError as err:
        log.error("truststore.unreadable", error=str(err))
        return []
    return [msg.TrustedCertificate(alias=a, fingerprint_sha256=fp) for a, fp in inventory]
