"""An accepted job survives its agent: stopped mid-download, it is held at the restart, and
resumed from its partial file when registration says so."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from directdl.bus.client import BusClient
from directdl.bus.topology import Topology
from directdl.contracts.download import DownloadTemplate, ResumeDownload
from directdl.contracts.host import HostState
from directdl.contracts.template import SourceProtocol, TemplateFormat
from directdl_testing.accounts import TestAccounts
from directdl_testing.nginx import Nginx
from directdl_testing.recorder import MessageRecorder
from directdl_testing.services import running
from directdl_testing.waiting import wait_until
from host_agent.bootstrap import bootstrap, prepare
from host_agent.config import HostAgentSettings

pytestmark = pytest.mark.integration


@pytest.fixture
def nginx() -> Iterator[Nginx]:
    with Nginx(slow_rate="1m") as server:
        yield server


def test_an_interrupted_job_starts_again_and_completes(
    broker_accounts: TestAccounts,
    topology: Topology,
    data_dir: Path,
    nginx: Nginx,
    client_as: Callable[[str], BusClient],
    recorder: MessageRecorder,
) -> None:
    settings = HostAgentSettings(
        AMQP_URL=broker_accounts.url("host-agent-host-1"),
        DIRECTDL_EXCHANGE=topology.exchange,
        DIRECTDL_QUEUE_PREFIX=topology.queue_prefix,
        DIRECTDL_DATA_DIR=data_dir,
        host_id="host-1",
        heartbeat_interval=0.5,
        health_port=0,
    )
    data = os.urandom(6 * 2**20)  # six seconds at 1 MB/s: stopped well before the end
    nginx.add_file("disk.raw", data)
    command = DownloadTemplate(
        job_id=str(uuid.uuid4()),
        deploy_id=str(uuid.uuid4()),
        template_id=str(uuid.uuid4()),
        url=f"{nginx.http_url}/slow/disk.raw",
        protocol=SourceProtocol.HTTP,
        format=TemplateFormat.RAW,
        checksum="{SHA-256}" + hashlib.sha256(data).hexdigest(),
    )
    pool = settings.resolved_pool_path()

    # Each start as `python -m host_agent` does it: migrate, `prepare`, run.
    with started(settings):
        client_as("registration").publish(
            DownloadTemplate.address(host_id="host-1"), command.model_dump_json().encode()
        )
        # The first progress says where the download starts (byte 0); then bytes arrive.
        recorder.expect("template.download.progress", timeout=10, count=2)
    # Stopped mid-download: only the hidden partial file is there, kept; nothing completed.
    [partial] = list(pool.iterdir())
    assert partial.name.startswith(".") and 0 < partial.stat().st_size < len(data)
    assert not [m for m in recorder.messages if m.routing_key == "template.download.completed"]

    with started(settings):
        [recovered] = recorder.expect("template.download.recovered", timeout=10)
        [job] = recovered.body["jobs"]
        assert (job["job_id"], job["bytes_kept"]) == (command.job_id, partial.stat().st_size)
        time.sleep(1)  # held: nothing goes on until the deploy's owner says so
        assert not [m for m in recorder.messages if m.routing_key.startswith("template.download.c")]
        resume = ResumeDownload(job_id=command.job_id, deploy_id=command.deploy_id)
        client_as("registration").publish(
            ResumeDownload.address(host_id="host-1"), resume.model_dump_json().encode()
        )
        [done] = recorder.expect("template.download.completed", timeout=20)
        assert done.body["job_id"] == command.job_id
        assert done.body["cached"] is False
    assert (pool / command.template_id).read_bytes() == data
    wait_until(lambda: [p.name for p in pool.iterdir()] == [command.template_id])
    gets = [e for e in nginx.access_log_lines() if e.uri.endswith("/disk.raw")]
    assert [e.status for e in gets] == [200, 206]
    assert sum(e.body_bytes_sent for e in gets) <= len(data) * 1.05  # + the kept file's tail
    downs = [
        m
        for m in recorder.messages
        if m.routing_key == "host.heartbeat" and m.body["state"] == HostState.DOWN
    ]
    assert downs, "a host that stops cleanly says so"


@contextmanager
def started(settings: HostAgentSettings) -> Iterator[None]:
    service = bootstrap(settings)
    service.migrate()
    prepare(service, settings)
    with running(service):
        yield
