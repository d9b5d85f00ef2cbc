"""The agent's handlers: recorded jobs, cached answers, a pool it lacks, its trust store."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from directdl.bus.memory import InMemoryBus
from directdl.contracts.certificate import InstallCertificate, RemoveCertificate
from directdl.contracts.download import DownloadTemplate
from directdl.contracts.template import SourceProtocol, TemplateFormat
from directdl.runtime.db import session_factory
from directdl_testing.certs import make_self_signed
from directdl_testing.memory import memory_engine
from host_agent.adapters.orm import Base, store
from host_agent.domain import StoredFile
from host_agent.handlers import HANDLERS
from host_agent.inventory import SentInventory
from host_agent.truststore import TrustStore
from host_agent.uow import AgentUnitOfWork

pytestmark = pytest.mark.unit


@pytest.fixture
def woken() -> list[int]:
    return []


@pytest.fixture
def bus(tmp_path: Path, woken: list[int]) -> InMemoryBus:
    sessions = session_factory(memory_engine(Base.metadata))
    return InMemoryBus.serving(
        HANDLERS,
        {
            "host_id": "h1",
            "zone_id": "zone-1",
            "cluster_id": "cluster-1",
            "pool_id": "pool-1",
            "pool": tmp_path,
            "truststore": TrustStore(tmp_path / "t.p12", "pw"),
            "wake_runner": lambda: woken.append(1),
            "cancel_job": lambda job_id, report: None,
            "heartbeat_interval": lambda: 5.0,
            "sent_inventory": SentInventory(),
            "cache_interval": lambda: 60.0,
        },
        lambda: AgentUnitOfWork(sessions),
        store,
        sessions,
        {"host_id": "h1"},
    )


def command(**fields: object) -> DownloadTemplate:
    values: dict[str, object] = {
        "job_id": str(uuid.uuid4()),
        "deploy_id": "d1",
        "template_id": "t1",
        "url": "http://h/t.raw",
        "protocol": SourceProtocol.HTTP,
        "format": TemplateFormat.RAW,
    } | fields
    return DownloadTemplate(**values)


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


def to_host(bus: InMemoryBus, cmd: InstallCertificate | RemoveCertificate) -> dict[str, object]:
    correlation = bus.submit(cmd, type(cmd).address(host_id="h1"))
    reply = bus.reply_for(correlation)
    assert reply is not None and reply.result is not None
    return reply.result


def test_a_certificate_is_installed_then_removed_and_each_outcome_reported(
    bus: InMemoryBus,
) -> None:
    cert_pem, _key = make_self_signed("ca", ["DNS:ca.example"])
    ids = {"operation_id": "op1", "certificate_id": "c1", "alias": "CA"}

    before = datetime.now(UTC)
    installing = InstallCertificate(**ids, certificate=cert_pem.decode())
    assert to_host(bus, installing)["outcome"] == "installed"
    assert to_host(bus, RemoveCertificate(**ids))["outcome"] == "removed"

    [installed] = bus.published("cert.host.installed")
    [removed] = bus.published("cert.host.removed")
    assert (installed["host_id"], installed["alias"]) == ("h1", "CA")
    assert removed["outcome"] == "removed"
    # When the host answered, for the certificate service to judge its deadline by.
    answered = [datetime.fromisoformat(r["answered_at"]) for r in (installed, removed)]
    assert before <= answered[0] <= answered[1] <= datetime.now(UTC)


def test_a_certificate_the_store_refuses_is_reported_failed(bus: InMemoryBus) -> None:
    ids = {"operation_id": "op1", "certificate_id": "c1", "alias": "-not-an-alias"}
    cert_pem, _key = make_self_signed("ca", ["DNS:ca.example"])

    installing = InstallCertificate(**ids, certificate=cert_pem.decode())
    assert to_host(bus, installing)["outcome"] == "failed"

    [failed] = bus.published("cert.host.failed")
    assert "-not-an-alias" in failed["reason"]
    assert datetime.fromisoformat(failed["answered_at"]).tzinfo is not None
