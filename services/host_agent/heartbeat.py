"""The agent's heartbeat: who it is, its pool's capacity, what the pool and trust store hold."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import structlog

from directdl.contracts import host as msg
from directdl.runtime.service import Service
from host_agent.config import HostAgentSettings
from host_agent.truststore import TrustStore, TrustStoreError
from host_agent.uow import AgentUnitOfWork

log = structlog.get_logger(__name__)


def heartbeat(
    settings: HostAgentSettings,
    pool: Path,
    truststore: TrustStore,
    uow: AgentUnitOfWork,
    state: msg.HostState,
) -> msg.HostHeartbeat:
    usage = shutil.disk_usage(pool)
    return msg.HostHeartbeat(
        host_id=settings.host_id,
        zone_id=settings.zone_id,
        cluster_id=settings.cluster_id,
        state=state,
        interval_seconds=settings.heartbeat_interval,
        pools=[
            msg.PoolStatus(
                pool_id=settings.pool_id, capacity_bytes=usage.total, free_bytes=usage.free
            )
        ],
        templates=[
            msg.StoredTemplate(
                template_id=f.template_id,
                pool_id=f.pool_id,
                path=f.path,
                size=f.size,
                digest=f.digest,
            )
            for f in uow.pool.all()
        ],
        certificates=_trusted(truststore),
        sent_at=datetime.now(UTC),
    )


def announce(
    settings: HostAgentSettings,
    pool: Path,
    truststore: TrustStore,
    state: msg.HostState,
    service: Service,
) -> None:
    with service.transaction() as uow:
        assert isinstance(uow, AgentUnitOfWork)
        uow.emit(heartbeat(settings, pool, truststore, uow, state))


def _trusted(truststore: TrustStore) -> list[msg.TrustedCertificate]:
    """What the store really holds. An unreadable store is reported empty (and by /readyz),
    so that the host still says it is alive."""
    try:
        inventory = truststore.inventory()
    except TrustStoreError as err:
        log.error("truststore.unreadable", error=str(err))
        return []
    return [msg.TrustedCertificate(alias=a, fingerprint_sha256=fp) for a, fp in inventory]
