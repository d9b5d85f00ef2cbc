"""Deploy orchestration on the in-memory bus: host choice, fail-over, failures that end it."""

from __future__ import annotations

from typing import Any

import pytest

from directdl.bus.memory import InMemoryBus
from directdl.contracts import deploy, download, host
from directdl.contracts import template as tpl
from directdl_testing.clocks import Wall
from directdl_testing.messages import host_says, report

pytestmark = pytest.mark.unit

CHECKSUM = "{SHA-256}" + "ab" * 32
SIZE = 4096  # what the conftest's URL check says every source holds


def beat(bus: InMemoryBus, host_id: str, zone: str = "zone-1", **kw: Any) -> None:
    """What an agent sends as it starts: its inventory, then its first heartbeat."""
    bus.submit_many(host_says(host_id, zone_id=zone, **kw))


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
            details={"HTTP_HEADER:Authorization": "Bearer t", "other": "x"},
        )
    )
    return str(reply.result["template"]["id"])


def downloads(bus: InMemoryBus) -> list[tuple[str, dict[str, Any]]]:
    return [(key, body) for key, body in bus.events if key.endswith(".template.download")]


def completed(
    cmd: dict[str, Any], host_id: str, cached: bool = False, **kw: Any
) -> download.DownloadCompleted:
    return download.DownloadCompleted(
        **report(cmd, host_id, **kw),
        path=f"/pools/{host_id}/{cmd['template_id']}",
        size=SIZE,
        digest=CHECKSUM,
        cached=cached,
        duration_s=1.0,
    )


def failed(cmd: dict[str, Any], host_id: str, code: str, **kw: Any) -> download.DownloadFailed:
    return download.DownloadFailed(
        **report(cmd, host_id, **kw), code=code, message=f"{code} on {host_id}"
    )


def test_a_deploy_sends_everything_the_agent_needs_and_replies_when_done(
    bus: InMemoryBus, template_id: str
) -> None:
    beat(bus, "h1")
    correlation = bus.submit(deploy.DeployTemplate(template_id=template_id, zone_id="zone-1"))
    assert bus.reply_for(correlation) is None, "the reply waits for the outcome"

    [(key, cmd)] = downloads(bus)
    assert key == "host.h1.template.download"
    assert cmd["url"] == "https://images.example/c.qcow2"
    assert cmd["checksum"] == CHECKSUM
    assert cmd["headers"] == {"Authorization": "Bearer t"}
    assert cmd["timeouts"] == {"connect_ms": 5000, "socket_ms": 5000, "connection_request_ms": 5000}

    bus.submit(completed(cmd, "h1"))
    reply = bus.reply_for(correlation)
    assert reply is not None and reply.ok
    assert reply.result["host_id"] == "h1"
    assert reply.result["digest"] == CHECKSUM
    assert [a["state"] for a in reply.result["attempts"]] == ["SUCCEEDED"]
    [event] = bus.published("template.deployed")
    assert event["deploy_id"] == cmd["deploy_id"]


def test_a_failed_host_is_followed_by_the_next_each_once_and_at_most_three(
    bus: InMemoryBus, template_id: str
) -> None:
    for h in ("h1", "h2", "h3", "h4"):
        beat(bus, h)
    correlation = bus.submit(deploy.DeployTemplate(template_id=template_id, zone_id="zone-1"))
    for n in range(3):
        key, cmd = downloads(bus)[n]
        bus.submit(failed(cmd, key.split(".")[1], "CONNECTION"))

    hosts = [key.split(".")[1] for key, _ in downloads(bus)]
    assert len(hosts) == 3 and len(set(hosts)) == 3
    reply = bus.reply_for(correlation)
    assert reply is not None and reply.error is not None
    assert reply.error.code == "DOWNLOAD_FAILED"
    assert [a["host_id"] for a in reply.error.details["attempts"]] == hosts
    assert bus.published("template.deploy.failed")[0]["code"] == "CONNECTION"


def test_a_deploy_whose_first_host_fails_succeeds_on_the_second(
    bus: InMemoryBus, template_id: str
) -> None:
    beat(bus, "h1")
    beat(bus, "h2")
    correlation = bus.submit(deploy.DeployTemplate(template_id=template_id, zone_id="zone-1"))
    key, first = downloads(bus)[0]
    first_host = key.split(".")[1]
    bus.submit(failed(first, first_host, "TLS"))
    key, second = downloads(bus)[1]
    second_host = key.split(".")[1]
    bus.submit(completed(second, second_host))

    reply = bus.reply_for(correlation)
    assert reply is not None and reply.ok
    assert second_host != first_host
    assert [a["state"] for a in reply.result["attempts"]] == ["FAILED", "SUCCEEDED"]


@pytest.mark.parametrize("code", ["CHECKSUM_MISMATCH", "UNSAFE_IMAGE"])
def test_a_checksum_mismatch_or_unsafe_image_is_not_retried_elsewhere(
    bus: InMemoryBus, template_id: str, code: str
) -> None:
    beat(bus, "h1")
    beat(bus, "h2")
    correlation = bus.submit(deploy.DeployTemplate(template_id=template_id, zone_id="zone-1"))
    key, cmd = downloads(bus)[0]
    bus.submit(failed(cmd, key.split(".")[1], code))

    assert len(downloads(bus)) == 1
    reply = bus.reply_for(correlation)
    assert reply is not None and reply.error is not None and code in reply.error.message


@pytest.mark.parametrize("code", list(download.DownloadFailure))
def test_the_failure_code_alone_decides_whether_another_host_is_tried(
    bus: InMemoryBus, template_id: str, code: download.DownloadFailure
) -> None:
    beat(bus, "h1")
    beat(bus, "h2")
    correlation = bus.submit(deploy.DeployTemplate(template_id=template_id, zone_id="zone-1"))
    key, cmd = downloads(bus)[0]
    first_host = key.split(".")[1]
    bus.submit(failed(cmd, first_host, code))

    tried = [k.split(".")[1] for k, _ in downloads(bus)]
    reply = bus.reply_for(correlation)
    if code.another_host_may_succeed:
        assert len(tried) == 2 and tried[1] != first_host
        assert reply is None, "the deploy goes on"
    else:
        assert tried == [first_host]
        assert reply is not None and reply.error is not None
        assert reply.error.code == "DOWNLOAD_FAILED" and code in reply.error.message
        assert bus.published("template.deploy.failed")[0]["code"] == code


def test_a_host_without_the_pool_moves_the_deploy_to_another_that_has_it(
    bus: InMemoryBus, template_id: str
) -> None:
    shared = [{"pool_id": "shared", "capacity_bytes": 10**12, "free_bytes": 10**11}]
    beat(bus, "h1", pools=shared)
    beat(bus, "h2", pools=shared)
    beat(bus, "h3")  # Up, but without the pool: never asked
    correlation = bus.submit(
        deploy.DeployTemplate(template_id=template_id, zone_id="zone-1", pool_id="shared")
    )
    key, first = downloads(bus)[0]
    first_host = key.split(".")[1]
    # The host's pool went away after its last heartbeat said otherwise.
    bus.submit(failed(first, first_host, "NO_SUCH_POOL", pool_id="shared"))
    [_, (key, second)] = downloads(bus)
    second_host = key.split(".")[1]
    assert second_host in {"h1", "h2"} - {first_host}
    assert second["pool_id"] == "shared"
    bus.submit(completed(second, second_host, pool_id="shared"))

    reply = bus.reply_for(correlation)
    assert reply is not None and reply.ok, reply
    assert (reply.result["host_id"], reply.result["pool_id"]) == (second_host, "shared")
    attempts = [(a["host_id"], a["state"], a.get("error_code")) for a in reply.result["attempts"]]
    assert attempts == [(first_host, "FAILED", "NO_SUCH_POOL"), (second_host, "SUCCEEDED", None)]


def test_a_missing_pool_no_other_host_has_fails_the_deploy(
    bus: InMemoryBus, template_id: str
) -> None:
    beat(bus, "h1", pools=[{"pool_id": "shared", "capacity_bytes": 10**12, "free_bytes": 1}])
    beat(bus, "h2")
    correlation = bus.submit(
        deploy.DeployTemplate(template_id=template_id, zone_id="zone-1", pool_id="shared")
    )
    [(_, cmd)] = downloads(bus)
    bus.submit(failed(cmd, "h1", "NO_SUCH_POOL", pool_id="shared"))

    assert len(downloads(bus)) == 1, "h2 has no pool 'shared'"
    reply = bus.reply_for(correlation)
    assert reply is not None and reply.error is not None
    assert reply.error.code == "DOWNLOAD_FAILED" and "NO_SUCH_POOL" in reply.error.message
    assert bus.published("template.deploy.failed")[0]["code"] == "NO_SUCH_POOL"


def test_a_host_holding_the_template_is_preferred(bus: InMemoryBus, template_id: str) -> None:
    beat(bus, "h1")
    held = [
        {
            "template_id": template_id,
            "pool_id": "pool-h2",
            "path": "/p",
            "size": 1,
            "digest": CHECKSUM,
        }
    ]
    beat(
        bus,
        "h2",
        templates=held,
        pools=[{"pool_id": "pool-h2", "capacity_bytes": 1, "free_bytes": 0}],
    )
    bus.submit(deploy.DeployTemplate(template_id=template_id, zone_id="zone-1"))
    assert downloads(bus)[0][0] == "host.h2.template.download"


def test_down_and_silent_hosts_are_never_chosen(
    bus: InMemoryBus, template_id: str, wall: Wall
) -> None:
    beat(bus, "h1", state="Down")
    beat(bus, "h2")
    wall.advance(60)  # h2 silent since
    reply = bus.call(deploy.DeployTemplate(template_id=template_id, zone_id="zone-1"))
    assert reply.error is not None and reply.error.code == "UNAVAILABLE"
    assert "zone-1" in reply.error.message
    assert downloads(bus) == []


def test_a_named_host_must_be_up_and_in_the_zone(bus: InMemoryBus, template_id: str) -> None:
    beat(bus, "h1", zone="zone-2")
    beat(bus, "h2", state="Down")
    elsewhere = bus.call(
        deploy.DeployTemplate(template_id=template_id, zone_id="zone-1", host_id="h1")
    )
    down = bus.call(deploy.DeployTemplate(template_id=template_id, zone_id="zone-1", host_id="h2"))
    assert elsewhere.error is not None and elsewhere.error.code == "NOT_FOUND"
    assert (
        down.error is not None and down.error.code == "UNAVAILABLE" and "h2" in down.error.message
    )


def test_unknown_template_or_zone_is_not_found(bus: InMemoryBus, template_id: str) -> None:
    beat(bus, "h1")
    unknown = bus.call(deploy.DeployTemplate(template_id="nope", zone_id="zone-1"))
    wrong_zone = bus.call(deploy.DeployTemplate(template_id=template_id, zone_id="zone-9"))
    assert (
        unknown.error is not None
        and unknown.error.code == "NOT_FOUND"
        and "nope" in unknown.error.message
    )
    assert wrong_zone.error is not None and "zone-9" in wrong_zone.error.message


def test_a_host_that_stops_fails_its_attempt_over_to_another(
    bus: InMemoryBus, template_id: str
) -> None:
    beat(bus, "h1")
    beat(bus, "h2")
    bus.submit(deploy.DeployTemplate(template_id=template_id, zone_id="zone-1"))
    first_host = downloads(bus)[0][0].split(".")[1]
    beat(bus, first_host, state="Down")
    hosts = [key.split(".")[1] for key, _ in downloads(bus)]
    assert len(hosts) == 2 and hosts[1] != first_host


def test_late_or_duplicate_outcomes_change_nothing(bus: InMemoryBus, template_id: str) -> None:
    beat(bus, "h1")
    correlation = bus.submit(deploy.DeployTemplate(template_id=template_id, zone_id="zone-1"))
    _, cmd = downloads(bus)[0]
    bus.submit(completed(cmd, "h1"))
    bus.submit(failed(cmd, "h1", "CONNECTION"))
    assert bus.reply_for(correlation) is not None
    assert len(bus.published("template.deployed")) == 1
    assert bus.published("template.deploy.failed") == []


def test_hosts_are_listed_from_heartbeats(bus: InMemoryBus, wall: Wall) -> None:
    beat(bus, "h2")
    wall.advance(5 * 60)  # h2 silent since
    beat(bus, "h1", sent_at=wall())
    items = bus.call(host.ListHosts(zone_id="zone-1")).result["items"]
    assert [(h["host_id"], h["state"]) for h in items] == [("h1", "Up"), ("h2", "Down")]


def test_a_named_pool_chooses_the_host_that_has_it(bus: InMemoryBus, template_id: str) -> None:
    beat(bus, "h1")
    beat(bus, "h2")
    bus.submit(deploy.DeployTemplate(template_id=template_id, zone_id="zone-1", pool_id="pool-h2"))
    assert [key for key, _ in downloads(bus)] == ["host.h2.template.download"]
    nowhere = bus.call(
        deploy.DeployTemplate(template_id=template_id, zone_id="zone-1", pool_id="pool-x")
    )
    assert nowhere.error is not None and nowhere.error.code == "UNAVAILABLE"


def test_the_room_that_counts_is_in_the_pool_asked_for(bus: InMemoryBus, template_id: str) -> None:
    def pool(pool_id: str, free: int) -> dict[str, Any]:
        return {"pool_id": pool_id, "capacity_bytes": 10**12, "free_bytes": free}

    beat(bus, "h1", pools=[pool("shared", 10**6), pool("local", 10**11)])
    beat(bus, "h2", pools=[pool("shared", 10**9)])
    bus.submit(deploy.DeployTemplate(template_id=template_id, zone_id="zone-1", pool_id="shared"))
    assert [key for key, _ in downloads(bus)] == ["host.h2.template.download"]


IMAGE = "{SHA-256}" + "cd" * 32


def cancels(bus: InMemoryBus) -> list[tuple[str, dict[str, Any]]]:
    return [(key, body) for key, body in bus.events if key.endswith(".template.download.cancel")]


def test_the_host_whose_attempt_is_given_up_on_is_told_to_cancel_it(
    bus: InMemoryBus, template_id: str
) -> None:
    beat(bus, "h1")
    beat(bus, "h2")
    bus.submit(deploy.DeployTemplate(template_id=template_id, zone_id="zone-1"))
    [(key, first)] = downloads(bus)
    first_host = key.split(".")[1]
    assert cancels(bus) == []
    beat(bus, first_host, state="Down")

    [(key, cancel)] = cancels(bus)
    assert key == f"host.{first_host}.template.download.cancel"
    assert (cancel["job_id"], cancel["deploy_id"]) == (first["job_id"], first["deploy_id"])
    assert f"host {first_host} is not Up" in cancel["reason"]
    assert first["deploy_id"] in cancel["reason"]
    [_, (key, _)] = downloads(bus)
    assert key.split(".")[1] != first_host, "the deploy went on elsewhere"


def test_a_silent_hosts_attempt_is_cancelled_even_when_the_deploy_ends_with_it(
    bus: InMemoryBus, template_id: str, wall: Wall
) -> None:
    beat(bus, "h1")
    correlation = bus.submit(deploy.DeployTemplate(template_id=template_id, zone_id="zone-1"))
    [(_, cmd)] = downloads(bus)
    beat(bus, "h1")
    assert cancels(bus) == [], "a heartbeat saying Up gives nothing up by itself"
    wall.advance(5 * 60)  # silent since
    bus.tick("watchdog")

    [(key, cancel)] = cancels(bus)
    assert key == "host.h1.template.download.cancel" and cancel["job_id"] == cmd["job_id"]
    reply = bus.reply_for(correlation)
    assert reply is not None and reply.error is not None and "HOST_DOWN" in reply.error.message
    bus.tick("watchdog")
    assert len(cancels(bus)) == 1, "an attempt is given up on, and cancelled, once"


@pytest.mark.parametrize("code", ["CONNECTION", "CHECKSUM_MISMATCH", "CANCELLED"])
def test_an_attempt_whose_host_reported_its_failure_is_not_cancelled(
    bus: InMemoryBus, template_id: str, code: str
) -> None:
    beat(bus, "h1")
    beat(bus, "h2")
    bus.submit(deploy.DeployTemplate(template_id=template_id, zone_id="zone-1"))
    key, cmd = downloads(bus)[0]
    bus.submit(failed(cmd, key.split(".")[1], code))
    assert cancels(bus) == []


def test_a_refused_copy_is_not_cancelled_its_host_said_it_had_finished(
    bus: InMemoryBus, template_id: str
) -> None:
    beat(bus, "h1")
    beat(bus, "h2")
    bus.submit(deploy.DeployTemplate(template_id=template_id, zone_id="zone-1"))
    key, cmd = downloads(bus)[0]
    bus.submit(completed(cmd, key.split(".")[1]).model_copy(update={"digest": IMAGE}))
    assert len(downloads(bus)) == 2, "the copy was refused, as DIGEST_MISMATCH"
    assert cancels(bus) == []


def test_a_late_report_from_a_host_given_up_on_changes_nothing(
    bus: InMemoryBus, template_id: str
) -> None:
    beat(bus, "h1")
    beat(bus, "h2")
    correlation = bus.submit(deploy.DeployTemplate(template_id=template_id, zone_id="zone-1"))
    key, first = downloads(bus)[0]
    first_host = key.split(".")[1]
    beat(bus, first_host, state="Down")
    bus.submit(completed(first, first_host))
    bus.submit(failed(first, first_host, "CANCELLED"))

    assert bus.reply_for(correlation) is None, "the deploy still waits for the second host"
    assert len(downloads(bus)) == 2 and len(cancels(bus)) == 1
    key, second = downloads(bus)[1]
    bus.submit(completed(second, key.split(".")[1]))
    reply = bus.reply_for(correlation)
    assert reply is not None and reply.ok and reply.result["host_id"] != first_host


@pytest.mark.parametrize("cached", [False, True])
def test_the_image_digest_a_host_reports_is_carried_to_the_deploys_outcome(
    bus: InMemoryBus, template_id: str, cached: bool
) -> None:
    beat(bus, "h1")
    correlation = bus.submit(deploy.DeployTemplate(template_id=template_id, zone_id="zone-1"))
    [(_, cmd)] = downloads(bus)
    bus.submit(completed(cmd, "h1", cached=cached).model_copy(update={"image_digest": IMAGE}))

    reply = bus.reply_for(correlation)
    assert reply is not None and reply.ok
    assert (reply.result["digest"], reply.result["image_digest"]) == (CHECKSUM, IMAGE)
    [event] = bus.published("template.deployed")
    assert (event["digest"], event["image_digest"], event["cached"]) == (CHECKSUM, IMAGE, cached)


def test_without_an_image_digest_the_outcome_has_none(bus: InMemoryBus, template_id: str) -> None:
    beat(bus, "h1")
    correlation = bus.submit(deploy.DeployTemplate(template_id=template_id, zone_id="zone-1"))
    [(_, cmd)] = downloads(bus)
    bus.submit(completed(cmd, "h1"))
    reply = bus.reply_for(correlation)
    assert reply is not None and reply.ok and reply.result.get("image_digest") is None
    assert bus.published("template.deployed")[0].get("image_digest") is None


def test_a_template_deleted_during_its_deploy_ends_it_when_its_host_cancels(
    bus: InMemoryBus, template_id: str
) -> None:
    beat(bus, "h1")
    beat(bus, "h2")
    correlation = bus.submit(deploy.DeployTemplate(template_id=template_id, zone_id="zone-1"))
    key, cmd = downloads(bus)[0]
    assert bus.call(tpl.DeleteTemplate(id=template_id)).ok
    # The agent drops the job when it hears of template.deleted, and says so.
    bus.submit(failed(cmd, key.split(".")[1], "CANCELLED"))

    assert len(downloads(bus)) == 1, "no other host is sent a template that is gone"
    reply = bus.reply_for(correlation)
    assert reply is not None and reply.error is not None
    assert reply.error.code == "DOWNLOAD_FAILED" and "CANCELLED" in reply.error.message
    assert bus.published("template.deploy.failed")[0]["code"] == "CANCELLED"


def test_a_template_deleted_during_its_deploy_ends_it_when_its_host_falls_silent(
    bus: InMemoryBus, template_id: str
) -> None:
    beat(bus, "h1")
    beat(bus, "h2")
    correlation = bus.submit(deploy.DeployTemplate(template_id=template_id, zone_id="zone-1"))
    key, cmd = downloads(bus)[0]
    assert bus.call(tpl.DeleteTemplate(id=template_id)).ok
    beat(bus, key.split(".")[1], state="Down")

    assert len(downloads(bus)) == 1
    [(cancel_key, cancel)] = cancels(bus)
    assert cancel_key == key + ".cancel" and cancel["job_id"] == cmd["job_id"]
    reply = bus.reply_for(correlation)
    assert reply is not None and reply.error is not None and "HOST_DOWN" in reply.error.message
