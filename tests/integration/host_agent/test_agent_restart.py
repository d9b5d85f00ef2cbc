"""An accepted job survives its agent: stopped mid-download, it finishes after a restart."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from directdl.bus.client import BusClient
from directdl.bus.topology import Topology
from directdl.contracts.download import DownloadTemplate
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
    data = os.urandom(3 * 2**20)  # three seconds at 1 MB/s
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

    # Each start as `python -m host_agent` does it: `running` migrates, `prepare` sweeps.
    prepare(settings)
    with running(bootstrap(settings)):
        client_as("registration").publish(
            DownloadTemplate.address(host_id="host-1"), command.model_dump_json().encode()
        )
        recorder.expect("template.download.progress", timeout=10)
    # stopped mid-download: nothing half-written is visible, and nothing completed
    assert [p.name for p in pool.iterdir()] == []
    assert not [m for m in recorder.messages if m.routing_key == "template.download.completed"]

    prepare(settings)
    with running(bootstrap(settings)):
        [done] = recorder.expect("template.download.completed", timeout=20)
        assert done.body["job_id"] == command.job_id
        assert done.body["cached"] is False
    assert (pool / command.template_id).read_bytes() == data
    wait_until(lambda: [p.name for p in pool.iterdir()] == [command.template_id])
    downs = [
        m
        for m in recorder.messages
        if m.routing_key == "host.heartbeat" and m.body["state"] == HostState.DOWN
    ]
    assert downs, "a host that stops cleanly says so"
