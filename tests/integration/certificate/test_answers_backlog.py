"""A backlog of answers fails no host: the certificate service, stopped while 50 hosts answer
in time and resumed past the deadline, reports every one UPLOADED."""

from __future__ import annotations

import json
import signal
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine

from certificate.uow import CertificateUnitOfWork
from directdl.bus.client import DIRECT_REPLY_TO, BusClient
from directdl.bus.topology import Topology
from directdl.contracts import certificate as msg
from directdl.contracts.settings import UpdateSetting
from directdl.runtime.accounts import provision
from directdl.runtime.db import session_factory
from directdl_testing.accounts import TEST_NAMES, TestAccounts, host_accounts
from directdl_testing.certs import make_self_signed
from directdl_testing.processes import ServiceProcess, clean_env, free_port
from directdl_testing.simhosts import HostIdentity, SimulatedHost, SimulatedHosts
from directdl_testing.waiting import wait_until

pytestmark = pytest.mark.integration

HOSTS = [HostIdentity(f"backlog-{n:02d}") for n in range(50)]
TIMEOUT_S = 5.0
PEM = make_self_signed("repo.example", ["DNS:repo.example"])[0].decode()


@pytest.fixture
def certificate_process(
    broker_accounts: TestAccounts, topology: Topology, data_dir: Path, tmp_path: Path
) -> Iterator[ServiceProcess]:
    port = free_port()
    env = clean_env(
        AMQP_URL=broker_accounts.url("certificate"),
        DIRECTDL_EXCHANGE=topology.exchange,
        DIRECTDL_QUEUE_PREFIX=topology.queue_prefix,
        DIRECTDL_DATA_DIR=str(data_dir),
        DIRECTDL_LOG_LEVEL="INFO",
        CERTIFICATE_HEALTH_PORT=str(port),
        CERTIFICATE_TIMER_INTERVAL="0.2",
    )
    process = ServiceProcess("certificate", env, port, tmp_path).start()
    try:
        yield process
    finally:
        process.kill(signal.SIGCONT)
        process.stop()


class HeldAnswers:
    """The hosts' on_command: each install is kept, to be answered when the test says."""

    def __init__(self) -> None:
        self.installs: dict[str, tuple[SimulatedHost, dict[str, Any]]] = {}

    def __call__(self, host: SimulatedHost, _key: str, body: bytes) -> None:
        self.installs[host.host_id] = (host, json.loads(body))

    def answer_all(self) -> None:
        for host, install in self.installs.values():
            host.publish(
                msg.CertificateInstalled(
                    operation_id=install["operation_id"],
                    certificate_id=install["certificate_id"],
                    host_id=host.host_id,
                    alias=install["alias"],
                    fingerprint_sha256="AB",
                    outcome="installed",
                    answered_at=datetime.now(UTC),
                )
            )


def up_hosts(data_dir: Path) -> int:
    """Hosts Up now by the service's own database, read beside it."""
    engine = create_engine(f"sqlite:///{data_dir / 'certificate.db'}")
    try:
        with CertificateUnitOfWork(session_factory(engine)) as uow:
            return len(uow.hosts.up_in_zone("zone-1", datetime.now(UTC)))
    finally:
        engine.dispose()


def test_answers_that_wait_in_the_queue_past_the_deadline_fail_no_host(
    broker_accounts: TestAccounts,
    topology: Topology,
    client: BusClient,
    certificate_process: ServiceProcess,
    data_dir: Path,
) -> None:
    provision(
        host_accounts([h.host_id for h in HOSTS], TEST_NAMES),
        broker_accounts.vhost,
        node=broker_accounts.node,
    )
    timeout = client.call(UpdateSetting(name="directdl.certificate.host.timeout", value=TIMEOUT_S))
    assert timeout.ok, timeout.error
    held = HeldAnswers()
    url = broker_accounts.admin_url
    with SimulatedHosts(
        url,
        HOSTS,
        1.0,
        topology=topology,
        on_command=held,
        command_keys=[msg.InstallCertificate.routing_key],
    ) as sim:
        wait_until(lambda: up_hosts(data_dir) == len(HOSTS), timeout=30, what="every host is Up")
        correlation_id = str(uuid.uuid4())
        upload = msg.UploadCertificate(
            name="repo", zone_id="zone-1", hypervisor="KVM", certificate=PEM
        )
        asked_at = datetime.now(UTC)
        client.publish(
            upload.routing_key,
            upload.model_dump_json(exclude_none=True).encode(),
            correlation_id=correlation_id,
            reply_to=DIRECT_REPLY_TO,
        )
        wait_until(lambda: len(held.installs) == len(HOSTS), timeout=10, what="every install")

        certificate_process.kill(signal.SIGSTOP)
        sim.in_loop(held.answer_all)  # in time, but the service reads none of them
        answered_by = datetime.now(UTC)
        assert answered_by < asked_at + timedelta(seconds=TIMEOUT_S), "the hosts were in time"
        time.sleep(TIMEOUT_S + 3)  # past the deadline, by the wall clock, while it stands still
        certificate_process.kill(signal.SIGCONT)

        reply = client.wait_reply(correlation_id, timeout=30)
        assert not sim.stats.errors, sim.stats.errors[:3]

    assert reply.result is not None, reply.error
    states = {h["host_id"]: h["state"] for h in reply.result["hosts"]}
    assert states == {h.host_id: "UPLOADED" for h in HOSTS}
    assert certificate_process.find_logs("cert.host_failed") == []
