"""The heartbeat: a timer of the table saying Up with its inventory's digest, the inventory
first when it changed, and the last word at a clean stop, Down."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import pytest

from directdl.bus.processing import check_emits
from directdl.contracts.base import Message
from directdl.contracts.host import HostHeartbeat, HostInventory, HostState, inventory_digest
from directdl.runtime.db import session_factory
from directdl_testing.certs import make_self_signed
from directdl_testing.memory import memory_engine
from host_agent.adapters.orm import Base
from host_agent.domain import StoredFile
from host_agent.handlers import HANDLERS
from host_agent.heartbeat import DOWN, TIMER, going_down
from host_agent.inventory import MIN_FREE_SPACE_STEP, SentInventory, rounded_free
from host_agent.truststore import TrustStore, fingerprint
from host_agent.uow import AgentUnitOfWork

pytestmark = pytest.mark.unit


class Agent:
    """What the heartbeat uses of its Service: transactions by name, each held to what the
    table lets that timer or background work publish, as `Service.transaction` holds it."""

    def __init__(self) -> None:
        self.sessions = session_factory(memory_engine(Base.metadata))
        self.published: list[Message] = []

    @contextmanager
    def transaction(self, work: str) -> Iterator[AgentUnitOfWork]:
        timer = HANDLERS.timers.get(work)
        allowed = frozenset(timer.emits if timer else HANDLERS.background[work])
        with AgentUnitOfWork(self.sessions) as uow:
            yield uow
            check_emits(work, allowed, uow.outgoing)
            self.published += [message for message, _key in uow.outgoing]
            uow.commit()

    def store(self, template_id: str, pool: Path) -> None:
        with AgentUnitOfWork(self.sessions) as uow:
            uow.pool.put(
                StoredFile(
                    template_id, "pool-1", str(pool / template_id), 10, "{SHA-256}aa", "{B}b"
                )
            )
            uow.commit()

    def beat(self, dependencies: dict[str, Any]) -> list[Message]:
        timer = HANDLERS.bind(dependencies, {"host_id": "h1"}).timers[TIMER]
        before = len(self.published)
        with self.transaction(TIMER) as uow:
            timer.run(uow)
        return self.published[before:]


@pytest.fixture
def agent() -> Agent:
    return Agent()


@pytest.fixture
def truststore(tmp_path: Path) -> TrustStore:
    return TrustStore(tmp_path / "t.p12", "pw")


@pytest.fixture
def dependencies(tmp_path: Path, truststore: TrustStore) -> dict[str, Any]:
    return {
        "host_id": "h1",
        "zone_id": "zone-1",
        "cluster_id": "cluster-1",
        "pool_id": "pool-1",
        "pool": tmp_path,
        "truststore": truststore,
        "sent_inventory": SentInventory(),
        "wake_runner": lambda: None,
        "cancel_job": lambda job_id, report: None,
        "cache_interval": lambda: 60.0,
        "heartbeat_interval": lambda: 2.5,
    }


def test_the_first_beat_sends_the_inventory_then_a_heartbeat_carrying_its_digest(
    agent: Agent, dependencies: dict[str, Any], truststore: TrustStore, tmp_path: Path
) -> None:
    cert_pem, _key = make_self_signed("ca", ["DNS:ca.example"])
    truststore.install("ca", cert_pem.decode())
    agent.store("t1", tmp_path)

    listed, beat = agent.beat(dependencies)

    assert isinstance(listed, HostInventory) and isinstance(beat, HostHeartbeat)
    assert (beat.host_id, beat.zone_id, beat.state, beat.interval_seconds) == (
        "h1",
        "zone-1",
        HostState.UP,
        2.5,
    )
    assert (listed.host_id, listed.zone_id, listed.cluster_id) == ("h1", "zone-1", "cluster-1")
    [pool] = listed.pools
    usage = shutil.disk_usage(tmp_path)
    assert (pool.pool_id, pool.capacity_bytes) == ("pool-1", usage.total)
    assert pool.free_bytes == rounded_free(usage.free, usage.total) <= usage.free
    assert [(t.template_id, t.digest) for t in listed.templates] == [("t1", "{SHA-256}aa")]
    [trusted] = listed.certificates
    assert trusted.alias == "ca"
    assert trusted.fingerprint_sha256 == fingerprint(truststore.entries()["ca"])
    assert listed.digest == inventory_digest(listed.pools, listed.templates, listed.certificates)
    assert beat.inventory_digest == listed.digest
    assert HostHeartbeat.model_fields.keys().isdisjoint({"pools", "templates", "certificates"})


def test_an_unchanged_inventory_is_not_sent_again_and_a_changed_one_is(
    agent: Agent, dependencies: dict[str, Any], tmp_path: Path
) -> None:
    first, _beat = agent.beat(dependencies)

    [again] = agent.beat(dependencies)
    agent.store("t2", tmp_path)
    listed, beat = agent.beat(dependencies)

    assert isinstance(first, HostInventory) and isinstance(again, HostHeartbeat)
    assert again.inventory_digest == first.digest
    assert isinstance(listed, HostInventory) and isinstance(beat, HostHeartbeat)
    assert [t.template_id for t in listed.templates] == ["t2"]
    assert beat.inventory_digest == listed.digest != first.digest


def test_a_restarted_agent_sends_its_inventory_at_its_first_beat(
    agent: Agent, dependencies: dict[str, Any]
) -> None:
    agent.beat(dependencies)

    restarted = dependencies | {"sent_inventory": SentInventory()}

    assert [type(m) for m in agent.beat(restarted)] == [HostInventory, HostHeartbeat]


def test_an_inventory_whose_transaction_failed_is_sent_with_the_next_beat(
    agent: Agent, dependencies: dict[str, Any]
) -> None:
    timer = HANDLERS.bind(dependencies, {"host_id": "h1"}).timers[TIMER]
    with AgentUnitOfWork(agent.sessions) as uow:
        timer.run(uow)
        uow.rollback()

    assert [type(m) for m in agent.beat(dependencies)] == [HostInventory, HostHeartbeat]


def test_free_space_is_rounded_down_to_a_percent_of_the_pool() -> None:
    tera = 10**12
    assert rounded_free(tera // 2 + 12_345, tera) == tera // 2
    assert rounded_free(tera // 2 - 1, tera) == tera // 2 - tera // 100
    # A download writing a few hundred MB changes nothing a beat would send.
    assert rounded_free(tera // 2 + 9 * 10**9, tera) == rounded_free(tera // 2 + 10**8, tera)
    # A small pool's step is at least 64 MiB, so its inventory does not change at every write.
    assert rounded_free(MIN_FREE_SPACE_STEP + 10, 10**9) == MIN_FREE_SPACE_STEP
    assert rounded_free(MIN_FREE_SPACE_STEP - 1, 10**9) == 0


def test_a_clean_stop_says_down_with_the_digest(agent: Agent, dependencies: dict[str, Any]) -> None:
    [_listed, up] = agent.beat(dependencies)

    going_down(dependencies)(cast(Any, agent))

    down = agent.published[-1]
    assert isinstance(down, HostHeartbeat) and isinstance(up, HostHeartbeat)
    assert (down.host_id, down.state) == ("h1", HostState.DOWN)
    assert down.inventory_digest == up.inventory_digest
    assert len(agent.published) == 3, "the inventory was current: only the Down beat"
    assert DOWN in HANDLERS.background
