"""An agent over RabbitMQ says what it holds before the heartbeat that carries its digest,
again when its pool changes, and when a service (only a service) asks."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from directdl.bus.client import BusClient
from directdl.bus.topology import Topology
from directdl.contracts.download import DownloadTemplate
from directdl.contracts.host import RequestInventory
from directdl.contracts.template import SourceProtocol, TemplateFormat
from directdl.runtime import metrics
from directdl_testing.accounts import TestAccounts
from directdl_testing.nginx import Nginx
from directdl_testing.recorder import MessageRecorder, Recorded
from directdl_testing.services import running
from directdl_testing.waiting import wait_until
from host_agent.bootstrap import bootstrap, prepare
from host_agent.config import HostAgentSettings
from host_agent.inventory import REQUEST_INTERVAL_S

pytestmark = pytest.mark.integration

INVENTORY, HEARTBEAT = "host.inventory", "host.heartbeat"


@pytest.fixture
def agent(
    broker_accounts: TestAccounts, topology: Topology, data_dir: Path, recorder: MessageRecorder
) -> Iterator[HostAgentSettings]:
    """host-1, started once the recorder listens, so that its first words are recorded."""
    settings = HostAgentSettings(
        AMQP_URL=broker_accounts.url("host-agent-host-1"),
        DIRECTDL_EXCHANGE=topology.exchange,
        DIRECTDL_QUEUE_PREFIX=topology.queue_prefix,
        DIRECTDL_DATA_DIR=data_dir,
        host_id="host-1",
        heartbeat_interval=0.5,
        health_port=0,
    )
    service = bootstrap(settings)
    service.migrate()
    prepare(service, settings)
    with running(service):
        yield settings


def from_agent(recorder: MessageRecorder) -> list[Recorded]:
    return [m for m in recorder.messages if m.routing_key in (INVENTORY, HEARTBEAT)]


def next_after(recorder: MessageRecorder, message: Recorded, timeout: float = 5) -> Recorded:
    """The agent's next inventory or heartbeat after `message`, once it has arrived."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        said = from_agent(recorder)
        if said[-1] is not message:
            return said[said.index(message) + 1]
        recorder.poll(0.1)
    raise AssertionError(f"nothing from the agent within {timeout:g} s after {message.routing_key}")


def reached(counter: Any, value: float) -> bool:
    return bool(counter._value.get() >= value)


def inventories(recorder: MessageRecorder) -> list[Recorded]:
    return [m for m in recorder.messages if m.routing_key == INVENTORY]


def test_the_inventory_comes_first_and_again_when_the_pool_changes(
    agent: HostAgentSettings,
    recorder: MessageRecorder,
    client_as: Callable[[str], BusClient],
) -> None:
    recorder.expect(HEARTBEAT, timeout=10, count=3)
    first, *beats = from_agent(recorder)
    assert first.routing_key == INVENTORY
    assert first.body["templates"] == []
    assert [m.routing_key for m in beats] == [HEARTBEAT] * len(beats), "unchanged, not resent"
    assert {m.body["inventory_digest"] for m in beats} == {first.body["digest"]}
    assert not {"pools", "templates", "certificates"} & set(beats[0].body)

    with Nginx() as nginx:
        data = b"a small disk image" * 1000
        nginx.add_file("disk.raw", data)
        command = DownloadTemplate(
            job_id=str(uuid.uuid4()),
            deploy_id=str(uuid.uuid4()),
            template_id=str(uuid.uuid4()),
            url=f"{nginx.http_url}/disk.raw",
            protocol=SourceProtocol.HTTP,
            format=TemplateFormat.RAW,
            checksum="{SHA-256}" + hashlib.sha256(data).hexdigest(),
        )
        client_as("registration").publish(
            DownloadTemplate.address(host_id="host-1"), command.model_dump_json().encode()
        )
        recorder.expect("template.download.completed", timeout=20)

    _first, changed = recorder.expect(INVENTORY, timeout=10, count=2)
    assert [t["template_id"] for t in changed.body["templates"]] == [command.template_id]
    beat = next_after(recorder, changed)
    assert beat.routing_key == HEARTBEAT
    assert beat.body["inventory_digest"] == changed.body["digest"] != first.body["digest"]


def test_a_service_asking_gets_the_inventory_and_an_operator_or_another_host_does_not(
    agent: HostAgentSettings,
    recorder: MessageRecorder,
    client_as: Callable[[str], BusClient],
) -> None:
    recorder.expect(HEARTBEAT, timeout=10, count=2)
    request = RequestInventory(digest_seen="{SHA-256}" + "0" * 64).model_dump_json().encode()
    address = RequestInventory.address(host_id="host-1")
    refused = metrics.rejected.labels("host-agent-host-1", address, "sender")

    for forger in ("cli", "host-agent-host-2"):
        # Past the agent's once-a-second limit, so that only the sender check can refuse it.
        time.sleep(REQUEST_INTERVAL_S)
        want = refused._value.get() + 1
        client_as(forger).publish(address, request)
        wait_until(partial(reached, refused, want), what=f"{forger}'s request refused")

    time.sleep(REQUEST_INTERVAL_S)
    client_as("sync-scheduler").publish(address, request)
    _started, answered = recorder.expect(INVENTORY, timeout=10, count=2)
    assert answered.body["host_id"] == "host-1"
    assert next_after(recorder, answered).body["inventory_digest"] == answered.body["digest"]
    assert len(inventories(recorder)) == 2, "the refused requests were answered by nothing"
