"""Deploys are counted by one outcome vocabulary, with a failure's code in its own label."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import REGISTRY

from directdl.bus.memory import InMemoryBus
from directdl.contracts import deploy, download
from directdl.contracts import template as tpl
from directdl_testing.messages import host_says, report

pytestmark = pytest.mark.unit

SIZE = 4096  # what the conftest's URL check says every source holds


def deploys(outcome: str, code: str = "") -> float:
    labels = {"service": "registration", "outcome": outcome, "code": code}
    return REGISTRY.get_sample_value("directdl_deploys_total", labels) or 0.0


def deploy_once(bus: InMemoryBus) -> tuple[str, dict[str, Any]]:
    """A fresh template deployed to zone-1's one host: the host and the command it was sent."""
    bus.submit_many(host_says("h1"))
    reply = bus.call(
        tpl.RegisterTemplate(
            name="centos",
            url="https://i.example/c.qcow2",
            zone_id="zone-1",
            hypervisor="KVM",
            format="QCOW2",
        )
    )
    assert reply.result is not None, reply.error
    template_id = reply.result["template"]["id"]
    bus.submit(deploy.DeployTemplate(template_id=template_id, zone_id="zone-1"))
    [(key, cmd)] = [(k, b) for k, b in bus.events if k.endswith(".template.download")]
    return key.split(".")[1], cmd


def test_a_deploy_that_succeeds_is_counted_as_succeeded_with_no_code(bus: InMemoryBus) -> None:
    before = deploys("succeeded")
    host_id, cmd = deploy_once(bus)
    bus.submit(
        download.DownloadCompleted(
            **report(cmd, host_id),
            path="/p/t",
            size=SIZE,
            digest="{SHA-256}" + "ab" * 32,
            cached=False,
            duration_s=1.0,
        )
    )
    assert bus.published("template.deployed")
    assert deploys("succeeded") == before + 1


def test_a_deploy_that_fails_is_counted_as_failed_with_the_last_attempts_code(
    bus: InMemoryBus,
) -> None:
    before = deploys("failed", "UNSAFE_IMAGE")
    host_id, cmd = deploy_once(bus)
    bus.submit(
        download.DownloadFailed(**report(cmd, host_id), code="UNSAFE_IMAGE", message="backing file")
    )
    assert bus.published("template.deploy.failed")
    assert deploys("failed", "UNSAFE_IMAGE") == before + 1
    assert (
        REGISTRY.get_sample_value(
            "directdl_deploys_total",
            {"service": "registration", "outcome": "UNSAFE_IMAGE", "code": ""},
        )
        is None
    )
