"""template.prepare on the in-memory bus: one deploy per host, a bounded number at a time,
each host's state, and the answer once every host has ended."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from directdl.bus.memory import InMemoryBus
from directdl.contracts import download, prepare
from directdl.contracts import template as tpl
from directdl.contracts.errors import ErrorCode, MessageError, NotFound
from directdl.settings_catalog import PREPARE_CONCURRENCY, default_of
from directdl_testing.messages import heartbeat, host_says, inventory, report
from registration.domain.host import Host
from registration.domain.prepare import host_changed, new_prepare
from registration.domain.template import new_template
from registration.policy import DownloadPolicy

pytestmark = pytest.mark.unit

CHECKSUM = "{SHA-256}" + "ab" * 32
SIZE = 4096
CONCURRENCY = 2


@pytest.fixture
def policy() -> DownloadPolicy:
    """The defaults, but two hosts at a time."""
    return DownloadPolicy(
        setting=lambda name: CONCURRENCY if name == PREPARE_CONCURRENCY else default_of(name)
    )


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
        )
    )
    return str(reply.result["template"]["id"])


def downloads(bus: InMemoryBus) -> list[tuple[str, dict[str, Any]]]:
    return [
        (key.split(".")[1], body) for key, body in bus.events if key.endswith(".template.download")
    ]


def completed(
    cmd: dict[str, Any], host_id: str, cached: bool = False
) -> download.DownloadCompleted:
    return download.DownloadCompleted(
        **report(cmd, host_id),
        path=f"/pools/{host_id}/{cmd['template_id']}",
        size=SIZE,
        digest=CHECKSUM,
        cached=cached,
        duration_s=1.0,
    )


def failed(cmd: dict[str, Any], host_id: str, code: str) -> download.DownloadFailed:
    return download.DownloadFailed(
        **report(cmd, host_id), code=code, message=f"{code} on {host_id}"
    )


def states(bus: InMemoryBus) -> list[tuple[str, str, int, int]]:
    return [
        (e["host_id"], e["state"], e["done"], e["total"])
        for e in bus.published("template.prepare.progress")
    ]


def test_at_most_the_concurrency_setting_runs_and_the_next_starts_when_one_ends(
    bus: InMemoryBus, template_id: str
) -> None:
    for h in ("h1", "h2", "h3"):
        beat(bus, h)
    correlation = bus.submit(prepare.PrepareTemplate(template_id=template_id, zone_id="zone-1"))
    assert bus.reply_for(correlation) is None, "the reply waits for every host"
    assert [h for h, _ in downloads(bus)] == ["h1", "h2"]

    h1 = downloads(bus)[0][1]
    bus.submit(completed(h1, "h1"))
    assert [h for h, _ in downloads(bus)] == ["h1", "h2", "h3"], "h3 took h1's slot"
    assert bus.reply_for(correlation) is None

    bus.submit(completed(downloads(bus)[1][1], "h2"))
    bus.submit(completed(downloads(bus)[2][1], "h3", cached=True))
    reply = bus.reply_for(correlation)
    assert reply is not None and reply.ok
    hosts = {h["host_id"]: h for h in reply.result["hosts"]}
    assert {h: v["state"] for h, v in hosts.items()} == {
        "h1": "SUCCEEDED",
        "h2": "SUCCEEDED",
        "h3": "CACHED",
    }
    assert hosts["h1"]["deploy_id"] == h1["deploy_id"]
    assert states(bus) == [
        ("h1", "RUNNING", 0, 3),
        ("h2", "RUNNING", 0, 3),
        ("h1", "SUCCEEDED", 1, 3),
        ("h3", "RUNNING", 1, 3),
        ("h2", "SUCCEEDED", 2, 3),
        ("h3", "CACHED", 3, 3),
    ]
    [prepared] = bus.published("template.prepared")
    assert prepared["prepare_id"] == reply.result["prepare_id"]
    assert len(bus.published("template.deployed")) == 3


def test_a_failed_host_is_reported_and_not_failed_over_to_another(
    bus: InMemoryBus, template_id: str
) -> None:
    beat(bus, "h1")
    beat(bus, "h2")
    correlation = bus.submit(
        prepare.PrepareTemplate(template_id=template_id, zone_id="zone-1", host_ids=["h1", "h2"])
    )
    (_, first), (_, second) = downloads(bus)
    bus.submit(failed(first, "h1", "CONNECTION"))
    assert len(downloads(bus)) == 2, "h1's deploy names h1: no other host is tried"
    assert bus.reply_for(correlation) is None
    bus.submit(completed(second, "h2"))

    reply = bus.reply_for(correlation)
    assert reply is not None and reply.ok, "a partial success is still an answer"
    [h1, h2] = reply.result["hosts"]
    assert (h1["host_id"], h1["state"], h1["code"]) == ("h1", "FAILED", "CONNECTION")
    assert "CONNECTION on h1" in h1["message"]
    assert h2["state"] == "SUCCEEDED"


def test_every_host_failing_still_answers_with_each_hosts_state(
    bus: InMemoryBus, template_id: str
) -> None:
    beat(bus, "h1")
    correlation = bus.submit(prepare.PrepareTemplate(template_id=template_id, zone_id="zone-1"))
    [(_, cmd)] = downloads(bus)
    bus.submit(failed(cmd, "h1", "HTTP_CLIENT"))
    reply = bus.reply_for(correlation)
    assert reply is not None and reply.ok
    assert [h["state"] for h in reply.result["hosts"]] == ["FAILED"]


def test_a_host_down_by_its_turn_fails_without_a_download(
    bus: InMemoryBus, template_id: str
) -> None:
    for h in ("h1", "h2", "h3"):
        beat(bus, h)
    correlation = bus.submit(prepare.PrepareTemplate(template_id=template_id, zone_id="zone-1"))
    beat(bus, "h3", state="Down")
    bus.submit(completed(downloads(bus)[0][1], "h1"))
    assert [h for h, _ in downloads(bus)] == ["h1", "h2"]
    bus.submit(completed(downloads(bus)[1][1], "h2"))
    reply = bus.reply_for(correlation)
    assert reply is not None and reply.ok
    h3 = reply.result["hosts"][2]
    assert (h3["host_id"], h3["state"], h3["code"]) == ("h3", "FAILED", "UNAVAILABLE")


def test_a_host_that_stops_fails_its_part_and_the_next_starts(
    bus: InMemoryBus, template_id: str
) -> None:
    for h in ("h1", "h2", "h3"):
        beat(bus, h)
    bus.submit(prepare.PrepareTemplate(template_id=template_id, zone_id="zone-1"))
    beat(bus, "h1", state="Down")
    assert [h for h, _ in downloads(bus)] == ["h1", "h2", "h3"]
    assert ("h1", "FAILED", 1, 3) in states(bus)


def test_only_up_hosts_of_the_zone_are_prepared(bus: InMemoryBus, template_id: str) -> None:
    beat(bus, "h1")
    beat(bus, "h2", state="Down")
    beat(bus, "other", zone="zone-2")
    bus.submit(prepare.PrepareTemplate(template_id=template_id, zone_id="zone-1"))
    assert [h for h, _ in downloads(bus)] == ["h1"]


def test_what_cannot_start_is_refused(bus: InMemoryBus, template_id: str) -> None:
    unknown = bus.call(prepare.PrepareTemplate(template_id="nope", zone_id="zone-1"))
    assert unknown.error is not None and unknown.error.code == ErrorCode.NOT_FOUND

    empty = bus.call(prepare.PrepareTemplate(template_id=template_id, zone_id="zone-1"))
    assert empty.error is not None and empty.error.code == ErrorCode.UNAVAILABLE

    beat(bus, "h1")
    beat(bus, "h2", state="Down")
    stranger = bus.call(
        prepare.PrepareTemplate(template_id=template_id, zone_id="zone-1", host_ids=["h1", "h9"])
    )
    assert stranger.error is not None and stranger.error.code == ErrorCode.NOT_FOUND
    assert "h9" in stranger.error.message
    down = bus.call(
        prepare.PrepareTemplate(template_id=template_id, zone_id="zone-1", host_ids=["h2"])
    )
    assert down.error is not None and down.error.code == ErrorCode.UNAVAILABLE
    assert "h2" in down.error.message
    assert downloads(bus) == [], "nothing starts when the command is refused"


def test_a_missing_pool_fails_each_host_at_once_and_answers_at_once(
    bus: InMemoryBus, template_id: str
) -> None:
    beat(bus, "h1")
    reply = bus.call(
        prepare.PrepareTemplate(template_id=template_id, zone_id="zone-1", pool_id="nowhere")
    )
    assert reply.ok
    assert [(h["state"], h["code"]) for h in reply.result["hosts"]] == [("FAILED", "UNAVAILABLE")]
    assert len(bus.published("template.prepared")) == 1


def test_a_plain_deploy_is_not_taken_for_a_prepares(bus: InMemoryBus, template_id: str) -> None:
    from directdl.contracts.deploy import DeployTemplate

    beat(bus, "h1")
    correlation = bus.submit(DeployTemplate(template_id=template_id, zone_id="zone-1"))
    bus.submit(completed(downloads(bus)[0][1], "h1"))
    assert bus.reply_for(correlation) is not None
    assert bus.published("template.prepare.progress") == []


# The domain alone.

NOW = datetime(2026, 12, 2, tzinfo=UTC)


def _host(host_id: str, zone: str = "zone-1", seen: datetime = NOW) -> Host:
    return Host.reported(heartbeat(host_id, zone_id=zone, sent_at=seen), inventory(host_id))


def _template() -> Any:
    return new_template(
        tpl.RegisterTemplate(
            name="t", url="https://x/t.qcow2", zone_id="zone-1", hypervisor="KVM", format="QCOW2"
        )
    )


def test_a_prepare_queues_the_hosts_named_once_each_in_order() -> None:
    cmd = prepare.PrepareTemplate(template_id="t", zone_id="zone-1", host_ids=["h2", "h1", "h2"])
    p = new_prepare(
        cmd, _template(), [_host("h1"), _host("h2")], 1, NOW, reply_to=None, correlation_id=None
    )
    assert [h.host_id for h in p.hosts] == ["h2", "h1"]
    first = p.next_queued()
    assert first is not None and first.host_id == "h2"
    p, _ = host_changed(p, "h2", prepare.PrepareState.RUNNING, NOW, deploy_id="d1")
    assert p.next_queued() is None, "one at a time"
    p, _ = host_changed(p, "h2", prepare.PrepareState.CACHED, NOW)
    assert p.for_deploy("d1") is not None and p.done == 1 and not p.ended
    with pytest.raises(ValueError):
        host_changed(p, "h2", prepare.PrepareState.FAILED, NOW)


def test_a_prepare_refuses_a_template_not_in_the_zone_and_a_silent_zone() -> None:
    with pytest.raises(NotFound):
        new_prepare(
            prepare.PrepareTemplate(template_id="t", zone_id="zone-2"),
            _template(),
            [_host("h1", zone="zone-2")],
            4,
            NOW,
            reply_to=None,
            correlation_id=None,
        )
    silent = _host("h1", seen=NOW - timedelta(hours=1))
    with pytest.raises(MessageError) as refused:
        new_prepare(
            prepare.PrepareTemplate(template_id="t", zone_id="zone-1"),
            _template(),
            [silent],
            4,
            NOW,
            reply_to=None,
            correlation_id=None,
        )
    assert refused.value.code is ErrorCode.UNAVAILABLE


def test_a_template_deleted_during_its_prepare_fails_the_hosts_still_queued(
    bus: InMemoryBus, template_id: str
) -> None:
    for h in ("h1", "h2", "h3"):
        beat(bus, h)
    correlation = bus.submit(prepare.PrepareTemplate(template_id=template_id, zone_id="zone-1"))
    assert bus.call(tpl.DeleteTemplate(id=template_id)).ok
    for host_id, cmd in downloads(bus):
        bus.submit(failed(cmd, host_id, "CANCELLED"))
    assert len(downloads(bus)) == 2
    reply = bus.reply_for(correlation)
    assert reply is not None and reply.ok
    assert [(h["state"], h["code"]) for h in reply.result["hosts"]] == [
        ("FAILED", "CANCELLED"),
        ("FAILED", "CANCELLED"),
        ("FAILED", "NOT_FOUND"),
    ]
