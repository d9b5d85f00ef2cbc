"""A service that lacks the host's inventory asks for it: it goes out at once, once a second
at most, and only a service may ask."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from directdl.bus.memory import InMemoryBus
from directdl.contracts.host import RequestInventory
from directdl.runtime.db import session_factory
from directdl_testing.memory import memory_engine
from host_agent.adapters.orm import Base, store
from host_agent.domain import StoredFile
from host_agent.handlers import HANDLERS
from host_agent.heartbeat import TIMER
from host_agent.inventory import REQUEST_INTERVAL_S, SentInventory
from host_agent.truststore import TrustStore
from host_agent.uow import AgentUnitOfWork

pytestmark = pytest.mark.unit

ADDRESS = RequestInventory.address(host_id="h1")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sessions() -> sessionmaker[Session]:
    return session_factory(memory_engine(Base.metadata))


@pytest.fixture
def bus(tmp_path: Path, clock: FakeClock, sessions: sessionmaker[Session]) -> InMemoryBus:
    return InMemoryBus.serving(
        HANDLERS,
        {
            "host_id": "h1",
            "zone_id": "zone-1",
            "cluster_id": "cluster-1",
            "pool_id": "pool-1",
            "pool": tmp_path,
            "truststore": TrustStore(tmp_path / "t.p12", "pw"),
            "sent_inventory": SentInventory(clock),
            "wake_runner": lambda: None,
            "cancel_job": lambda job_id, report: None,
            "heartbeat_interval": lambda: 5.0,
            "cache_interval": lambda: 60.0,
        },
        lambda: AgentUnitOfWork(sessions),
        store,
        sessions,
        {"host_id": "h1"},
    )


def ask(bus: InMemoryBus, user_id: str = "registration") -> None:
    bus.submit(RequestInventory(digest_seen="{SHA-256}00"), ADDRESS, user_id=user_id)


def test_a_service_asking_gets_the_inventory_and_the_next_beat_carries_its_digest(
    bus: InMemoryBus,
) -> None:
    ask(bus, "sync-scheduler")
    [listed] = bus.published("host.inventory")

    bus.tick(TIMER)

    [beat] = bus.published("host.heartbeat")
    assert beat["inventory_digest"] == listed["digest"]
    assert len(bus.published("host.inventory")) == 1, "the beat had nothing new to send"


@pytest.mark.parametrize("user_id", ["cli", "host-agent-h2", "host-agent-h1"])
def test_only_a_service_may_ask(bus: InMemoryBus, user_id: str) -> None:
    ask(bus, user_id)

    assert bus.published("host.inventory") == []


def test_services_asking_together_cost_one_inventory_a_second(
    bus: InMemoryBus, clock: FakeClock
) -> None:
    for service in ("registration", "certificate", "sync-scheduler"):
        ask(bus, service)
    assert len(bus.published("host.inventory")) == 1

    clock.now += REQUEST_INTERVAL_S
    ask(bus)

    assert len(bus.published("host.inventory")) == 2


def test_a_beat_sends_a_changed_inventory_even_right_after_a_request(
    bus: InMemoryBus, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    ask(bus)
    with AgentUnitOfWork(sessions) as uow:
        uow.pool.put(StoredFile("t1", "pool-1", str(tmp_path / "t1"), 10, "{SHA-256}aa", "{B}b"))
        uow.commit()

    bus.tick(TIMER)

    first, changed = bus.published("host.inventory")
    [beat] = bus.published("host.heartbeat")
    assert [t["template_id"] for t in changed["templates"]] == ["t1"]
    assert beat["inventory_digest"] == changed["digest"] != first["digest"]
