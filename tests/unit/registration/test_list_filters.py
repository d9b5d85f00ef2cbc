"""template.list and deploy.list by id prefix, and host.list by state, on the in-memory bus."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from directdl.bus.memory import InMemoryBus
from directdl.contracts import deploy
from directdl.contracts import template as tpl
from directdl.contracts.host import HostState, ListHosts
from directdl_testing.messages import host_says

pytestmark = pytest.mark.unit


def register(bus: InMemoryBus, name: str) -> str:
    reply = bus.call(
        tpl.RegisterTemplate(
            name=name,
            url="https://images.example/c.qcow2",
            zone_id="zone-1",
            hypervisor="KVM",
            format="QCOW2",
        )
    )
    assert reply.ok, reply.error
    return str(reply.result["template"]["id"])


def template_ids(bus: InMemoryBus, **filters: Any) -> list[str]:
    reply = bus.call(tpl.ListTemplates(**filters))
    assert reply.ok, reply.error
    assert reply.result["total"] == len(reply.result["items"])
    return [t["id"] for t in reply.result["items"]]


def deploy_ids(bus: InMemoryBus, **filters: Any) -> list[str]:
    reply = bus.call(deploy.ListDeploys(**filters))
    assert reply.ok, reply.error
    return [d["deploy_id"] for d in reply.result["items"]]


def test_templates_are_listed_by_id_prefix(bus: InMemoryBus) -> None:
    one, two = register(bus, "one"), register(bus, "two")
    assert template_ids(bus, id_prefix=one[:8]) == [one]
    assert template_ids(bus, id_prefix=two) == [two]
    assert template_ids(bus, id_prefix=one[:8], name="two") == []


def test_an_id_prefix_is_matched_literally_not_as_a_like_pattern(bus: InMemoryBus) -> None:
    register(bus, "one")
    assert template_ids(bus, id_prefix="%") == []
    assert template_ids(bus, id_prefix="________") == []


def test_deploys_are_listed_by_id_prefix(bus: InMemoryBus) -> None:
    bus.submit_many(host_says("h1"))
    template_id = register(bus, "one")
    shared = uuid.uuid4().hex[:6]
    chosen = [f"{shared}{n:02x}-0000-4000-8000-000000000000" for n in (1, 2)]
    for deploy_id in chosen:
        bus.submit(
            deploy.DeployTemplate(template_id=template_id, zone_id="zone-1", deploy_id=deploy_id)
        )
    assert deploy_ids(bus, id_prefix=shared) == chosen[::-1], "newest first"
    assert deploy_ids(bus, id_prefix=chosen[0][:8]) == [chosen[0]]
    assert deploy_ids(bus, id_prefix="_" * 8) == []


def test_hosts_are_listed_by_state(bus: InMemoryBus) -> None:
    bus.submit_many(host_says("up-1"))
    bus.submit_many(host_says("down-1", state=HostState.DOWN))
    bus.submit_many(host_says("up-2", zone_id="zone-2"))

    def hosts(**filters: Any) -> list[str]:
        reply = bus.call(ListHosts(**filters))
        assert reply.ok, reply.error
        return [h["host_id"] for h in reply.result["items"]]

    assert hosts() == ["down-1", "up-1", "up-2"]
    assert hosts(state=HostState.UP) == ["up-1", "up-2"]
    assert hosts(state=HostState.DOWN) == ["down-1"]
    assert hosts(state=HostState.UP, zone_id="zone-2") == ["up-2"]
