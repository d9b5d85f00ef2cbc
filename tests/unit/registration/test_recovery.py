"""A restarted host's unfinished jobs: resumed while their deploy waits there, else cancelled."""

from __future__ import annotations

from typing import Any

import pytest

from directdl.bus.memory import InMemoryBus
from directdl.contracts import deploy, download
from directdl.contracts import template as tpl
from directdl_testing.messages import heartbeat, host_says, report

pytestmark = pytest.mark.unit

CHECKSUM = "{SHA-256}" + "ab" * 32


@pytest.fixture
def template_id(bus: InMemoryBus) -> str:
    reply = bus.call(
        tpl.RegisterTemplate(
            name="centos",
            url="https://images.example/c.qcow2",
            zone_id="zone-1",
            hypervisor="KVM",
            format="QCOW2",
            checksum=CHECKSUM,
        )
    )
    return str(reply.result["template"]["id"])


def start(bus: InMemoryBus, template_id: str) -> tuple[str, str, dict[str, Any]]:
    """Deploy; the correlation id, the chosen host and the download command it was sent."""
    before = len(sent(bus, "download"))
    correlation = bus.submit(deploy.DeployTemplate(template_id=template_id, zone_id="zone-1"))
    [(key, cmd)] = sent(bus, "download")[before:]
    return correlation, key.split(".")[1], cmd


def sent(bus: InMemoryBus, what: str) -> list[tuple[str, dict[str, Any]]]:
    """The commands sent to hosts: `download`, `download.cancel` or `download.resume`."""
    suffix = f".template.{what}"
    return [(key, body) for key, body in bus.events if key.endswith(suffix)]


def recovered(host_id: str, *commands: dict[str, Any], **kw: Any) -> download.DownloadsRecovered:
    jobs = [
        download.RecoveredJob(
            job_id=cmd["job_id"],
            deploy_id=cmd["deploy_id"],
            template_id=cmd["template_id"],
            bytes_kept=1024,
        ).model_copy(update=kw)
        for cmd in commands
    ]
    return download.DownloadsRecovered(host_id=host_id, jobs=jobs)


def test_the_running_attempt_is_resumed_on_its_host(bus: InMemoryBus, template_id: str) -> None:
    bus.submit_many(host_says("h1"))
    correlation, host_id, cmd = start(bus, template_id)
    bus.submit(recovered(host_id, cmd))

    [(key, resume)] = sent(bus, "download.resume")
    assert key == "host.h1.template.download.resume"
    assert resume == {"job_id": cmd["job_id"], "deploy_id": cmd["deploy_id"]}
    assert sent(bus, "download.cancel") == []
    # The deploy still waits for that very attempt.
    bus.submit(
        download.DownloadCompleted(
            **report(cmd, "h1"), path="/p", size=4096, digest=CHECKSUM, cached=False, duration_s=1
        )
    )
    reply = bus.reply_for(correlation)
    assert reply is not None and reply.ok and len(reply.result["attempts"]) == 1


def test_an_attempt_failed_over_while_its_host_was_away_is_cancelled(
    bus: InMemoryBus, template_id: str
) -> None:
    bus.submit_many(host_says("h1"))
    bus.submit_many(host_says("h2"))
    _, first_host, cmd = start(bus, template_id)
    bus.submit(heartbeat(first_host, state="Down"))
    given_up = len(sent(bus, "download.cancel"))  # the cancel sent as it was given up on
    bus.submit(heartbeat(first_host))
    bus.submit(recovered(first_host, cmd))

    assert sent(bus, "download.resume") == []
    [(key, cancel)] = sent(bus, "download.cancel")[given_up:]
    assert key == f"host.{first_host}.template.download.cancel"
    assert (cancel["job_id"], cancel["deploy_id"]) == (cmd["job_id"], cmd["deploy_id"])
    assert "has ended: FAILED HOST_DOWN" in cancel["reason"]


def test_an_attempt_that_succeeded_is_cancelled_not_resumed(
    bus: InMemoryBus, template_id: str
) -> None:
    bus.submit_many(host_says("h1"))
    _, _, cmd = start(bus, template_id)
    bus.submit(
        download.DownloadCompleted(
            **report(cmd, "h1"), path="/p", size=4096, digest=CHECKSUM, cached=False, duration_s=1
        )
    )
    bus.submit(recovered("h1", cmd))
    assert sent(bus, "download.resume") == []
    [(_, cancel)] = sent(bus, "download.cancel")
    assert "has ended: SUCCEEDED" in cancel["reason"]


def test_a_job_no_deploy_knows_is_cancelled(bus: InMemoryBus) -> None:
    unknown = {"job_id": "job-x", "deploy_id": "deploy-x", "template_id": "t-x"}
    bus.submit(recovered("h1", unknown))

    [(key, cancel)] = sent(bus, "download.cancel")
    assert key == "host.h1.template.download.cancel"
    assert (cancel["job_id"], cancel["deploy_id"]) == ("job-x", "deploy-x")
    assert cancel["reason"] == "no deploy has an attempt job-x"
    assert sent(bus, "download.resume") == []


def test_another_hosts_job_is_cancelled_on_the_one_that_claims_it_and_runs_on(
    bus: InMemoryBus, template_id: str
) -> None:
    bus.submit_many(host_says("h1"))
    correlation, _, cmd = start(bus, template_id)
    bus.submit(recovered("h2", cmd))

    [(key, cancel)] = sent(bus, "download.cancel")
    assert key == "host.h2.template.download.cancel"
    assert "another host" in cancel["reason"] and "h1" not in cancel["reason"]
    assert sent(bus, "download.resume") == []
    assert bus.reply_for(correlation) is None, "h1's attempt runs on"
    bus.submit(recovered("h1", cmd))
    assert [key for key, _ in sent(bus, "download.resume")] == ["host.h1.template.download.resume"]


@pytest.mark.parametrize("field", ["deploy_id", "template_id"])
def test_a_job_that_names_another_deploy_or_template_is_cancelled(
    bus: InMemoryBus, template_id: str, field: str
) -> None:
    bus.submit_many(host_says("h1"))
    _, _, cmd = start(bus, template_id)
    bus.submit(recovered("h1", cmd, **{field: "other"}))
    assert sent(bus, "download.resume") == []
    [(_, cancel)] = sent(bus, "download.cancel")
    assert "is no attempt of deploy" in cancel["reason"] and "other" in cancel["reason"]


def test_each_job_of_one_event_is_answered(bus: InMemoryBus, template_id: str) -> None:
    bus.submit_many(host_says("h1"))
    _, _, first = start(bus, template_id)
    _, _, second = start(bus, template_id)
    gone = {"job_id": "job-x", "deploy_id": "deploy-x", "template_id": template_id}
    bus.submit(recovered("h1", first, gone, second))

    assert [b["job_id"] for _, b in sent(bus, "download.resume")] == [
        first["job_id"],
        second["job_id"],
    ]
    assert [b["job_id"] for _, b in sent(bus, "download.cancel")] == ["job-x"]


def test_the_event_again_is_answered_again_and_changes_nothing(
    bus: InMemoryBus, template_id: str
) -> None:
    bus.submit_many(host_says("h1"))
    correlation, _, cmd = start(bus, template_id)
    event = recovered("h1", cmd)
    bus.submit(event)
    bus.submit(event)  # the agent sends it again after another restart: a new message

    assert [b for _, b in sent(bus, "download.resume")] == [
        {"job_id": cmd["job_id"], "deploy_id": cmd["deploy_id"]}
    ] * 2
    assert bus.reply_for(correlation) is None and len(sent(bus, "download")) == 1


def test_a_redelivered_event_is_answered_once(bus: InMemoryBus, template_id: str) -> None:
    bus.submit_many(host_says("h1"))
    _, _, cmd = start(bus, template_id)
    body = recovered("h1", cmd).model_dump_json().encode()
    for _ in range(2):
        bus.submit_raw(
            "template.download.recovered", body, message_id="m-1", user_id="host-agent-h1"
        )
    assert len(sent(bus, "download.resume")) == 1


def test_a_host_speaks_only_for_its_own_jobs(bus: InMemoryBus, template_id: str) -> None:
    bus.submit_many(host_says("h1"))
    _, _, cmd = start(bus, template_id)
    bus.submit(recovered("h1", cmd), user_id="host-agent-h2")
    assert sent(bus, "download.resume") == [] and sent(bus, "download.cancel") == []
