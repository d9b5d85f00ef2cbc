"""Fixtures shared by every test: a real broker, per-test names, running services."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from directdl.bus.client import BusClient
from directdl.bus.topology import Topology
from directdl.runtime.accounts import ProvisioningError
from directdl_testing.accounts import TestAccounts
from directdl_testing.broker import BrokerUnavailable, resolve_broker_url
from directdl_testing.isolation import remove_topology, unique_topology
from directdl_testing.postgres import PostgresUnavailable, temporary_database
from directdl_testing.recorder import MessageRecorder

ClientFactory = Callable[[str], BusClient]


@pytest.fixture(scope="session")
def broker_accounts() -> Iterator[TestAccounts]:
    """A broker user for each service, host agent and the operator, in the tests' vhost."""
    try:
        url, release = resolve_broker_url()
    except BrokerUnavailable as err:
        pytest.fail(str(err), pytrace=False)
    accounts = TestAccounts(url)
    try:
        accounts.provision()
    except ProvisioningError as err:
        release()
        pytest.fail(f"cannot create the tests' broker users: {err}", pytrace=False)
    yield accounts
    release()


@pytest.fixture(scope="session")
def amqp_url(broker_accounts: TestAccounts) -> str:
    """The broker as its administrator, in the tests' vhost; services connect as themselves
    with `broker_accounts.url(name)`."""
    return broker_accounts.admin_url


@pytest.fixture
def topology(amqp_url: str) -> Iterator[Topology]:
    """A uniquely named exchange and queue prefix: tests never see each other's messages."""
    topology = unique_topology()
    yield topology
    remove_topology(amqp_url, topology)


@pytest.fixture
def client(amqp_url: str, topology: Topology) -> Iterator[BusClient]:
    with BusClient(amqp_url, topology, app_id="test-client") as bus_client:
        yield bus_client


@pytest.fixture
def client_as(broker_accounts: TestAccounts, topology: Topology) -> Iterator[ClientFactory]:
    """`client_as("registration")`: a bus client that publishes as that broker user, as a
    test must to send what only that service or host may send."""
    opened: list[BusClient] = []

    def open_as(user: str) -> BusClient:
        opened.append(BusClient(broker_accounts.url(user), topology, app_id=f"test-as-{user}"))
        return opened[-1]

    yield open_as
    for bus_client in opened:
        bus_client.close()


@pytest.fixture
def recorder(amqp_url: str, topology: Topology) -> Iterator[MessageRecorder]:
    with MessageRecorder(amqp_url, topology, "#") as recording:
        yield recording


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test, dropped afterwards."""
    try:
        with temporary_database() as url:
            yield url
    except PostgresUnavailable as err:
        pytest.fail(str(err), pytrace=False)
