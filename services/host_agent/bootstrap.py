"""Wires a host agent: its identity, pool, job runner, heartbeat and dispatch table, no effects."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import Any

import structlog

from directdl.runtime.service import Service, ServiceDefinition
from host_agent.adapters import gauges
from host_agent.adapters.orm import store
from host_agent.config import HostAgentSettings
from host_agent.handlers import HANDLERS
from host_agent.heartbeat import going_down
from host_agent.inventory import SentInventory
from host_agent.jobs import JobRunner, Transfer
from host_agent.recovery import recover
from host_agent.transfer import PoolTransfer
from host_agent.truststore import TrustStore
from host_agent.uow import AgentUnitOfWork

MIGRATIONS = Path(__file__).parent / "migrations"

log = structlog.get_logger(__name__)


def bootstrap(
    settings: HostAgentSettings | None = None, transfer: Transfer | None = None
) -> Service[AgentUnitOfWork]:
    settings = settings or HostAgentSettings()
    pool = settings.resolved_pool_path()
    truststore = TrustStore(settings.resolved_truststore_path(), settings.truststore_password)

    def trusted_bundle() -> str | None:
        # HTTPS downloads trust the system's CAs plus what operators uploaded to this host.
        bundle = truststore.pem_bundle_path()
        return str(bundle) if bundle else None

    runner = JobRunner(
        settings.host_id,
        settings.pool_id,
        settings.download_workers,
        transfer or PoolTransfer(pool, trusted_bundle),
    )
    dependencies: dict[str, Any] = {
        "host_id": settings.host_id,
        "zone_id": settings.zone_id,
        "cluster_id": settings.cluster_id,
        "pool_id": settings.pool_id,
        "pool": pool,
        "truststore": truststore,
        "sent_inventory": SentInventory(),
        "wake_runner": runner.wake,
        "cancel_job": runner.cancel,
        "heartbeat_interval": lambda: settings.heartbeat_interval,
        "cache_interval": lambda: settings.cache_interval,
    }

    def truststore_readable() -> None:
        truststore.inventory()

    def pool_writable() -> None:
        if not os.access(pool, os.W_OK):
            raise PermissionError(f"pool {pool} is not writable")

    return Service(
        ServiceDefinition(
            name=settings.service_name,
            settings=settings,
            handlers=HANDLERS,
            dependencies=dependencies,
            address={"host_id": settings.host_id},
            store=store,
            uow_factory=AgentUnitOfWork,
            migrations=MIGRATIONS,
            tasks=(runner,),
            extra_checks={"pool": pool_writable, "truststore": truststore_readable},
            on_stopping=going_down(dependencies),
            collectors={
                "jobs": partial(gauges.download_jobs, host_id=settings.host_id),
                "pool": partial(
                    gauges.pool_space, host_id=settings.host_id, pool_id=settings.pool_id, path=pool
                ),
            },
        )
    )


def prepare(service: Service[AgentUnitOfWork], settings: HostAgentSettings) -> list[str]:
    """A start-up step, after migrating and before the agent runs: the jobs a crash left
    unfinished are held until registration says which to resume (from their partial files),
    and every other partial file is removed. Returns the held jobs' ids."""
    return [job.job_id for job in recover(service, settings.resolved_pool_path(), settings.host_id)]
