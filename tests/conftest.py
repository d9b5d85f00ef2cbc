"""Fixtures shared by every test: a real broker, per-test names, running services."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from directdl.bus.client import BusClient
from directdl.bus.topology import Topology
from directdl.testing.broker import BrokerUnavailable, resolve_broker_url
from directdl.testing.isolation import remove_topology, unique_topology
from directdl.testing.postgres import PostgresUnavailable, temporary_database
from directdl.testing.recorder import MessageRecorder


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    try:
        url, release = resolve_broker_url()
    except BrokerUnavailable as err:
        pytest.fail(str(err), pytrace=False)
    yield url
    release()


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
