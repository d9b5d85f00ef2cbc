"""A certificate service in a thread, and hosts that are only their broker users."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from certificate.bootstrap import bootstrap
from certificate.config import CertificateSettings
from certificate.uow import CertificateUnitOfWork
from directdl.bus.client import BusClient
from directdl.bus.topology import Topology
from directdl.contracts.senders import host_user
from directdl.runtime.service import Service
from directdl_testing.accounts import TestAccounts
from directdl_testing.messages import host_says
from directdl_testing.services import running
from directdl_testing.waiting import wait_until

HOSTS = ("host-1", "host-2")


@pytest.fixture(params=["sqlite", "postgresql"])
def certificate(
    request: pytest.FixtureRequest,
    broker_accounts: TestAccounts,
    topology: Topology,
    data_dir: Path,
) -> Iterator[Service[CertificateUnitOfWork]]:
    """On SQLite, as `make run` runs it, and on PostgreSQL: they lock differently."""
    database_url = (
        request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    )
    settings = CertificateSettings(
        AMQP_URL=broker_accounts.url("certificate"),
        DIRECTDL_EXCHANGE=topology.exchange,
        DIRECTDL_QUEUE_PREFIX=topology.queue_prefix,
        DIRECTDL_DATA_DIR=data_dir,
        database_url=database_url,
        health_port=0,
        timer_interval=0.2,
    )
    with running(bootstrap(settings)) as service:
        yield service


@pytest.fixture
def hosts(
    broker_accounts: TestAccounts,
    topology: Topology,
    certificate: Service[CertificateUnitOfWork],
) -> Iterator[dict[str, BusClient]]:
    """A client per host, publishing as that host; each has beaten once, and been heard."""
    clients = {h: BusClient(broker_accounts.url(host_user(h)), topology, h) for h in HOSTS}
    for host_id, client in clients.items():
        for message in host_says(host_id, interval_seconds=60):
            client.publish(message.routing_key, message.model_dump_json().encode())

    def all_heard() -> bool:
        with certificate.unit_of_work() as uow:
            return len(uow.hosts.up_in_zone("zone-1", datetime.now(UTC))) == len(HOSTS)

    wait_until(all_heard, what="the certificate service has heard every host")
    yield clients
    for client in clients.values():
        client.close()
