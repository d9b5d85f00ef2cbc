"""Registration and two host agents in threads, on the test's broker names, with nginx."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from certificate.bootstrap import bootstrap as certificate_bootstrap
from certificate.config import CertificateSettings
from directdl.bus.client import BusClient
from directdl.bus.topology import Topology
from directdl.contracts.host import ListHosts
from directdl.contracts.senders import host_user
from directdl.runtime.service import Service
from directdl_testing.accounts import TestAccounts
from directdl_testing.nginx import Nginx
from directdl_testing.services import running
from directdl_testing.waiting import wait_until
from host_agent.bootstrap import bootstrap as agent_bootstrap
from host_agent.config import HostAgentSettings
from registration.bootstrap import bootstrap as registration_bootstrap
from registration.config import RegistrationSettings

BEAT = 0.5  # heartbeat interval: a silent host counts as down after 3 of them (1.5 s, so
# that a loaded 2-core machine, slow to handle a heartbeat, does not make a host look down)


@dataclass
class Stack:
    registration: Service
    certificate: Service
    agents: dict[str, Service]
    pools: dict[str, Path]
    truststores: dict[str, Path]


def agent_settings(
    accounts: TestAccounts, topology: Topology, data_dir: Path, host_id: str
) -> HostAgentSettings:
    return HostAgentSettings(
        AMQP_URL=accounts.url(host_user(host_id)),
        DIRECTDL_EXCHANGE=topology.exchange,
        DIRECTDL_QUEUE_PREFIX=topology.queue_prefix,
        DIRECTDL_DATA_DIR=data_dir,
        host_id=host_id,
        zone_id="zone-1",
        pool_id=f"pool-{host_id}",
        heartbeat_interval=BEAT,
        health_port=0,
    )


@pytest.fixture
def stack(
    broker_accounts: TestAccounts, topology: Topology, data_dir: Path, client: BusClient
) -> Iterator[Stack]:
    settings = RegistrationSettings(
        AMQP_URL=broker_accounts.url("registration"),
        DIRECTDL_EXCHANGE=topology.exchange,
        DIRECTDL_QUEUE_PREFIX=topology.queue_prefix,
        DIRECTDL_DATA_DIR=data_dir,
        health_port=0,
        watchdog_interval=BEAT,
    )
    with ExitStack() as stack:
        registration = stack.enter_context(running(registration_bootstrap(settings)))
        certificate = stack.enter_context(
            running(
                certificate_bootstrap(
                    CertificateSettings(
                        AMQP_URL=broker_accounts.url("certificate"),
                        DIRECTDL_EXCHANGE=topology.exchange,
                        DIRECTDL_QUEUE_PREFIX=topology.queue_prefix,
                        DIRECTDL_DATA_DIR=data_dir,
                        health_port=0,
                        timer_interval=BEAT,
                    )
                )
            )
        )
        agents, pools, truststores = {}, {}, {}
        for host_id in ("host-1", "host-2"):
            config = agent_settings(broker_accounts, topology, data_dir, host_id)
            agents[host_id] = stack.enter_context(running(agent_bootstrap(config)))
            pools[host_id] = config.resolved_pool_path()
            truststores[host_id] = config.resolved_truststore_path()

        def both_up() -> bool:
            reply = client.call(ListHosts(zone_id="zone-1"))
            assert reply.result is not None
            return [h["state"] for h in reply.result["items"]] == ["Up", "Up"]

        wait_until(both_up, timeout=10, what="both hosts Up")
        yield Stack(registration, certificate, agents, pools, truststores)


@pytest.fixture
def nginx() -> Iterator[Nginx]:
    redirects = {"/redirect-to-missing.raw": "{http_url}/missing.raw"}
    with Nginx(slow_rate="2m", redirects=redirects) as server:
        yield server
