"""Wires a host agent: its identity, pool, job runner, heartbeat and the one queue it reads."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

from directdl.contracts.host import HostState
from directdl.runtime.service import Service, ServiceDefinition
from directdl.runtime.tasks import Periodic
from host_agent.adapters.orm import store
from host_agent.config import HostAgentSettings
from host_agent.download.sink import clean_partials
from host_agent.handlers import Agent, routes
from host_agent.heartbeat import announce
from host_agent.jobs import JobRunner, Transfer
from host_agent.transfer import PoolTransfer
from host_agent.truststore import TrustStore
from host_agent.uow import AgentUnitOfWork

MIGRATIONS = Path(__file__).parent / "migrations"


def bootstrap(
    settings: HostAgentSettings | None = None, transfer: Transfer | None = None
) -> Service:
    settings = settings or HostAgentSettings()
    pool = settings.resolved_pool_path()
    # Partial files are a crash's leftovers; their jobs are still recorded and start again.
    clean_partials(pool)
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
    agent = Agent(settings.host_id, settings.pool_id, runner.wake, truststore)

    def truststore_readable() -> None:
        truststore.inventory()

    def pool_writable() -> None:
        if not os.access(pool, os.W_OK):
            raise PermissionError(f"pool {pool} is not writable")

    return Service(
        ServiceDefinition(
            name=settings.service_name,
            settings=settings,
            queues={"commands": routes(agent)},
            store=store,
            uow_factory=AgentUnitOfWork,
            migrations=MIGRATIONS,
            tasks=(
                runner,
                Periodic(
                    "heartbeat",
                    lambda: settings.heartbeat_interval,
                    partial(announce, settings, pool, truststore, HostState.UP),
                ),
            ),
            extra_checks={"pool": pool_writable, "truststore": truststore_readable},
            on_stopping=partial(announce, settings, pool, truststore, HostState.DOWN),
        )
    )
