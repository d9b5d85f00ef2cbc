"""The agent's download handler: recorded jobs, cached answers, a pool it does not have."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from directdl.bus.memory import InMemoryBus
from directdl.contracts.download import DownloadTemplate
from directdl.contracts.template import Protocol, TemplateFormat
from directdl.runtime.db import session_factory
from directdl.testing.memory import memory_engine
from host_agent.adapters.orm import Base, store
from host_agent.domain import StoredFile
from host_agent.handlers import Agent, routes
from host_agent.truststore import TrustStore
from host_agent.uow import AgentUnitOfWork

pytestmark = pytest.mark.unit


@pytest.fixture
def woken() -> list[int]:
    return []


@pytest.fixture
def bus(tmp_path: Path, woken: list[int]) -> InMemoryBus:
    sessions = session_factory(memory_engine(Base.metadata))
    agent = Agent("h1", "pool-1", lambda: woken.append(1), TrustStore(tmp_path / "t.p12", "pw"))
    return InMemoryBus(routes(agent), lambda: AgentUnitOfWork(sessions), store, sessions)


def command(**fields: object) -> DownloadTemplate:
    values: dict[str, object] = {
        "job_id": str(uuid.uuid4()),
        "deploy_id": "d1",
        "template_id": "t1",
        "url": "http://h/t.raw",
        "protocol": Protocol.HTTP,
        "format": TemplateFormat.RAW,
    } | fields
    return DownloadTemplate(**values)  # type: ignore[arg-type]


def send(bus: InMemoryBus, cmd: DownloadTemplate) -> dict[str, object]:
    correlation = bus.submit(cmd, DownloadTemplate.address(host_id="h1"))
    reply = bus.reply_for(correlation)
    assert reply is not None and reply.result is not None
    return reply.result


def test_a_download_is_recorded_and_the_runner_woken_after_the_commit(
    bus: InMemoryBus, woken: list[int]
) -> None:
    assert send(bus, command())["state"] == "QUEUED"
    assert woken == [1]


def test_a_pool_the_host_lacks_is_answered_with_a_failure_event(
    bus: InMemoryBus, woken: list[int]
) -> None:
    assert send(bus, command(pool_id="pool-9"))["state"] == "FAILED"
    [failed] = bus.published("template.download.failed")
    assert failed["code"] == "NO_SUCH_POOL" and "pool-9" in failed["message"]
    assert woken == []


def test_an_intact_stored_template_is_answered_as_cached(bus: InMemoryBus, tmp_path: Path) -> None:
    path = tmp_path / "t1"
    path.write_bytes(b"x" * 10)
    with AgentUnitOfWork(bus.sessions) as uow:
        uow.pool.put(StoredFile("t1", "pool-1", str(path), 10, "{SHA-256}aa", "{SHA-256}aa"))
        uow.commit()

    assert send(bus, command(checksum="{SHA-256}aa"))["state"] == "CACHED"
    [done] = bus.published("template.download.completed")
    assert done["cached"] is True and done["path"] == str(path)

    path.write_bytes(b"x")  # truncated behind the agent's back: downloaded again
    assert send(bus, command(checksum="{SHA-256}aa"))["state"] == "QUEUED"
