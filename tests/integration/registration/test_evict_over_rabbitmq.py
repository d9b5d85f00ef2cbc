"""template.evict over a real RabbitMQ: the hosts asked, the reply, and the copies they removed."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from directdl.bus.client import BusClient
from directdl.bus.topology import Topology
from directdl.contracts import host, pool
from directdl.contracts import template as tpl
from directdl.contracts.base import Command, Message
from directdl.contracts.senders import host_user
from directdl.runtime.service import Service
from directdl_testing.accounts import TestAccounts
from directdl_testing.messages import host_says
from directdl_testing.recorder import MessageRecorder
from directdl_testing.waiting import wait_until

pytestmark = pytest.mark.integration

CHECKSUM = "{SHA-256}" + "ab" * 32
HOSTS = ("host-1", "host-2")


def answer(client: BusClient, command: Command) -> dict[str, Any]:
    return json.loads(client.call(command).to_json())


def send(client: BusClient, message: Message) -> None:
    client.publish(message.routing_key, message.model_dump_json(exclude_none=True).encode())


def says(
    host_id: str, templates: list[host.StoredTemplate]
) -> list[host.HostInventory | host.HostHeartbeat]:
    """What the agent sends: its inventory, then the heartbeat carrying its digest."""
    return host_says(host_id, interval_seconds=30, templates=templates)


@pytest.fixture
def agents(broker_accounts: TestAccounts, topology: Topology) -> Iterator[dict[str, BusClient]]:
    """What each host's agent would send, as its own broker user, so that it is believed."""
    clients = {
        h: BusClient(broker_accounts.url(host_user(h)), topology, app_id=f"test-agent-{h}")
        for h in HOSTS
    }
    yield clients
    for agent in clients.values():
        agent.close()


def held(client: BusClient) -> Callable[[], dict[str, list[str]]]:
    def templates_by_host() -> dict[str, list[str]]:
        items = answer(client, host.ListHosts())["result"]["items"]
        return {h["host_id"]: [t["template_id"] for t in h["templates"]] for h in items}

    return templates_by_host


def test_evicting_a_template_asks_its_zones_hosts_and_forgets_what_they_removed(
    client: BusClient,
    agents: dict[str, BusClient],
    registration: Service,
    recorder: MessageRecorder,
) -> None:
    registered = answer(
        client,
        tpl.RegisterTemplate(
            name="centos",
            url="https://images.example/c.qcow2",
            zone_id="zone-1",
            hypervisor="KVM",
            format="QCOW2",
            checksum=CHECKSUM,
            validate_url=False,
        ),
    )
    assert registered["ok"], registered
    template_id = registered["result"]["template"]["id"]
    copy = host.StoredTemplate(
        template_id=template_id, pool_id="pool-host-1", path="/p/c", size=4096, digest=CHECKSUM
    )
    for host_id, templates in (("host-1", [copy]), ("host-2", [])):
        for message in says(host_id, templates):
            send(agents[host_id], message)
    # Events and commands are separate queues: the hosts are known once host.list says so.
    inventory = held(client)
    wait_until(lambda: inventory() == {"host-1": [template_id], "host-2": []}, timeout=10)

    reply = answer(client, pool.EvictTemplate(template_id=template_id))
    assert reply["ok"], reply
    assert reply["result"] == {"hosts": ["host-1", "host-2"], "copies": 1}
    for host_id in HOSTS:
        [sent] = recorder.expect(f"host.{host_id}.template.evict")
        assert sent.properties.app_id == "registration"
        assert sent.body == {
            "template_ids": [template_id],
            "reason": "REQUESTED",
            "policy": {"max_bytes": 0, "max_age_s": 0},
        }

    send(
        agents["host-1"],
        pool.CopiesRemoved(
            host_id="host-1",
            pool_id="pool-host-1",
            removed=[
                pool.RemovedCopy(
                    template_id=template_id, path="/p/c", size=4096, reason="REQUESTED"
                )
            ],
            freed_bytes=4096,
        ),
    )
    wait_until(lambda: inventory() == {"host-1": [], "host-2": []}, timeout=10)


def test_evicting_from_an_unknown_host_is_not_found_and_asks_no_one(
    client: BusClient, registration: Service, recorder: MessageRecorder
) -> None:
    reply = answer(client, pool.EvictTemplate(host_id="host-9"))
    assert reply["ok"] is False
    assert reply["error"]["code"] == "NOT_FOUND" and "'host-9'" in reply["error"]["message"]
    recorder.poll(0.5)
    assert [m for m in recorder.messages if m.routing_key.endswith(".template.evict")] == []
