"""The heartbeat: a timer of the table saying Up, and the last word at a clean stop, Down."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import pytest

from directdl.bus.processing import check_emits
from directdl.contracts.base import Message
from directdl.contracts.host import HostHeartbeat, HostState
from directdl.runtime.db import session_factory
from directdl_testing.certs import make_self_signed
from directdl_testing.memory import memory_engine
from host_agent.adapters.orm import Base
from host_agent.domain import StoredFile
from host_agent.handlers import HANDLERS
from host_agent.heartbeat import DOWN, TIMER, going_down
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
        "wake_runner": lambda: None,
        "cancel_job": lambda job_id, report: None,
        "cache_interval": lambda: 60.0,
        "heartbeat_interval": lambda: 2.5,
    }


def test_the_timer_says_up_with_the_pool_and_what_it_and_the_trust_store_hold(
    agent: Agent, dependencies: dict[str, Any], truststore: TrustStore, tmp_path: Path
) -> None:
    cert_pem, _key = make_self_signed("ca", ["DNS:ca.example"])
    truststore.install("ca", cert_pem.decode())
    with AgentUnitOfWork(agent.sessions) as uow:
        uow.pool.put(StoredFile("t1", "pool-1", str(tmp_path / "t1"), 10, "{SHA-256}aa", "{B}b"))
        uow.commit()
    timer = HANDLERS.bind(dependencies, {"host_id": "h1"}).timers[TIMER]

    with agent.transaction(TIMER) as uow:
        timer.run(uow)

    assert timer.interval() == 2.5
    [beat] = agent.published
    assert isinstance(beat, HostHeartbeat)
    assert (beat.host_id, beat.zone_id, beat.state, beat.interval_seconds) == (
        "h1",
        "zone-1",
        HostState.UP,
        2.5,
    )
    [pool] = beat.pools
    assert (pool.pool_id, pool.capacity_bytes) == ("pool-1", shutil.disk_usage(tmp_path).total)
    assert [(t.template_id, t.digest) for t in beat.templates] == [("t1", "{SHA-256}aa")]
    [trusted] = beat.certificates
    assert trusted.alias == "ca"
    assert trusted.fingerprint_sha256 == fingerprint(truststore.entries()["ca"])


def test_a_clean_stop_says_down(agent: Agent, dependencies: dict[str, Any]) -> None:
    going_down(dependencies)(cast(Any, agent))

    [beat] = agent.published
    assert isinstance(beat, HostHeartbeat)
    assert (beat.host_id, beat.state) == ("h1", HostState.DOWN)
    assert DOWN in HANDLERS.background
