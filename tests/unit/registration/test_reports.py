"""Hosts' download reports are checked, not believed: whose attempt, what size, which digest."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from directdl.bus.memory import InMemoryBus
from directdl.contracts import deploy, download
from directdl.contracts import template as tpl
from directdl.contracts.reply import Reply
from directdl_testing.messages import host_says, report

pytestmark = pytest.mark.unit

CHECKSUM = "{SHA-256}" + "ab" * 32
OTHER = "{SHA-256}" + "cd" * 32
SIZE = 4096  # what the conftest's URL check says every source holds


def register(bus: InMemoryBus, url: str = "https://images.example/c.qcow2", **kw: Any) -> str:
    name = str(uuid.uuid4())
    reply = bus.call(
        tpl.RegisterTemplate(
            name=name, url=url, zone_id="zone-1", hypervisor="KVM", format="QCOW2", **kw
        )
    )
    assert reply.ok, reply.error
    return str(reply.result["template"]["id"])


def start(bus: InMemoryBus, template_id: str, **kw: Any) -> tuple[str, dict[str, Any]]:
    """Deploy; the correlation id and the download command the chosen host was sent."""
    before = len(downloads(bus))
    correlation = bus.submit(deploy.DeployTemplate(template_id=template_id, zone_id="zone-1", **kw))
    [(_, cmd)] = downloads(bus)[before:]
    return correlation, cmd


def downloads(bus: InMemoryBus) -> list[tuple[str, dict[str, Any]]]:
    return [(key, body) for key, body in bus.events if key.endswith(".template.download")]


def host_of(bus: InMemoryBus, cmd: dict[str, Any]) -> str:
    [key] = [k for k, body in downloads(bus) if body["job_id"] == cmd["job_id"]]
    return key.split(".")[1]


def completed(cmd: dict[str, Any], host_id: str, **kw: Any) -> download.DownloadCompleted:
    fields: dict[str, Any] = {
        "path": f"/pools/{host_id}/{cmd['template_id']}",
        "size": SIZE,
        "digest": CHECKSUM,
        "cached": False,
        "duration_s": 1.0,
    }
    claimed = {
        k: kw.pop(k) for k in list(kw) if k in ("job_id", "deploy_id", "template_id", "pool_id")
    }
    return download.DownloadCompleted(**report(cmd, host_id, **claimed), **(fields | kw))


def rejected(reason: str, routing_key: str = "template.download.completed") -> float:
    labels = {"service": "registration", "routing_key": routing_key, "reason": reason}
    return REGISTRY.get_sample_value("directdl_messages_rejected_total", labels) or 0.0


def waiting(bus: InMemoryBus, correlation: str) -> bool:
    return bus.reply_for(correlation) is None and not bus.published("template.deployed")


def succeeded(bus: InMemoryBus, correlation: str) -> Reply:
    reply = bus.reply_for(correlation)
    assert reply is not None and reply.ok, reply
    return reply


def failure(reply: Reply | None) -> dict[str, Any]:
    assert reply is not None and reply.error is not None, reply
    return reply.error.details


@pytest.mark.parametrize(
    ("forge", "reason"),
    [
        (lambda cmd: completed(cmd, "h2"), "wrong_host"),
        (lambda cmd: completed(cmd, "h1", job_id="made-up"), "unknown_attempt"),
        (lambda cmd: completed(cmd, "h1", deploy_id="another"), "wrong_deploy"),
        (lambda cmd: completed(cmd, "h1", template_id="another"), "wrong_template"),
    ],
    ids=["wrong host", "wrong job", "wrong deploy", "wrong template"],
)
def test_a_completion_for_no_awaited_attempt_is_ignored_counted_and_logged(
    bus: InMemoryBus, forge: Any, reason: str
) -> None:
    bus.submit_many(host_says("h1"))
    bus.submit_many(host_says("h2"))
    correlation, cmd = start(bus, register(bus, checksum=CHECKSUM), host_id="h1")
    before = rejected(reason)

    with capture_logs() as logs:
        forged = forge(cmd)
        bus.submit(forged)  # sent by the host it names, so the sender check lets it through

    assert waiting(bus, correlation), "the forged completion ended the deploy"
    assert rejected(reason) == before + 1
    [warning] = [e for e in logs if e["event"] == "deploy.report_ignored"]
    assert warning["log_level"] == "warning" and warning["reason"] == reason
    assert warning["claimed_host_id"] == forged.host_id
    assert warning["claimed_job_id"] == forged.job_id
    # the real host still finishes it
    bus.submit(completed(cmd, "h1"))
    succeeded(bus, correlation)


def test_a_forged_failure_does_not_move_the_deploy_on(bus: InMemoryBus) -> None:
    bus.submit_many(host_says("h1"))
    bus.submit_many(host_says("h2"))
    correlation, cmd = start(bus, register(bus), host_id="h1")
    before = rejected("wrong_host", "template.download.failed")
    bus.submit(
        download.DownloadFailed(**report(cmd, "h2"), code="CHECKSUM_MISMATCH", message="forged")
    )
    assert waiting(bus, correlation) and len(downloads(bus)) == 1
    assert rejected("wrong_host", "template.download.failed") == before + 1


def test_a_completion_in_another_pool_than_the_one_asked_for_is_ignored(
    bus: InMemoryBus,
) -> None:
    bus.submit_many(host_says("h1"))
    correlation, cmd = start(bus, register(bus), pool_id="pool-h1")
    before = rejected("wrong_pool")
    bus.submit(completed(cmd, "h1", pool_id="pool-elsewhere"))
    assert waiting(bus, correlation)
    assert rejected("wrong_pool") == before + 1


def test_a_completion_for_an_attempt_that_already_failed_is_ignored(bus: InMemoryBus) -> None:
    bus.submit_many(host_says("h1"))
    bus.submit_many(host_says("h2"))
    correlation, first = start(bus, register(bus))
    first_host = host_of(bus, first)
    bus.submit(
        download.DownloadFailed(**report(first, first_host), code="CONNECTION", message="refused")
    )
    [_, (_, second)] = downloads(bus)
    before = rejected("attempt_settled")

    bus.submit(completed(first, first_host))

    assert waiting(bus, correlation), "a settled attempt's completion ended the deploy"
    assert rejected("attempt_settled") == before + 1
    bus.submit(completed(second, host_of(bus, second)))
    assert bus.published("template.deployed")[0]["host_id"] == host_of(bus, second)


def test_the_forged_completion_that_once_succeeded_now_fails_the_attempt(
    bus: InMemoryBus,
) -> None:
    bus.submit_many(host_says("h1"))
    correlation, cmd = start(bus, register(bus, checksum=CHECKSUM))
    bus.submit(
        completed(cmd, "h1", path="/nonexistent/forged", size=1, digest="{SHA-256}" + "0" * 64)
    )

    details = failure(bus.reply_for(correlation))
    assert [(a["state"], a["error_code"]) for a in details["attempts"]] == [
        ("FAILED", "DIGEST_MISMATCH")
    ]
    assert bus.published("template.deployed") == []
    assert bus.published("template.deploy.failed")[0]["code"] == "DIGEST_MISMATCH"


def test_a_digest_other_than_the_checksum_fails_that_host_and_another_is_tried(
    bus: InMemoryBus,
) -> None:
    bus.submit_many(host_says("h1"))
    bus.submit_many(host_says("h2"))
    correlation, first = start(bus, register(bus, checksum=CHECKSUM))
    bus.submit(completed(first, host_of(bus, first), digest=OTHER))

    [_, (key, second)] = downloads(bus)
    assert key.split(".")[1] != host_of(bus, first), "the lying host was asked again"
    # algorithm spelling and hex case do not matter
    bus.submit(completed(second, host_of(bus, second), digest="{sha256}" + "AB" * 32))
    reply = bus.reply_for(correlation)
    assert reply is not None and reply.ok
    assert [(a["state"], a["error_code"]) for a in reply.result["attempts"]] == [
        ("FAILED", "DIGEST_MISMATCH"),
        ("SUCCEEDED", None),
    ]
    assert OTHER in reply.result["attempts"][0]["message"]


@pytest.mark.parametrize(
    "digest",
    ["{MD5}" + "ab" * 16, "{SHA-256}" + "ab" * 31, "not a digest"],
    ids=["other algorithm", "short", "garbage"],
)
def test_a_digest_that_is_not_the_checksum_in_its_algorithm_is_a_mismatch(
    bus: InMemoryBus, digest: str
) -> None:
    bus.submit_many(host_says("h1"))
    correlation, cmd = start(bus, register(bus, checksum=CHECKSUM))
    bus.submit(completed(cmd, "h1", digest=digest))
    assert failure(bus.reply_for(correlation))["attempts"][0]["error_code"] == "DIGEST_MISMATCH"


def test_without_a_checksum_the_first_verified_digest_binds_later_hosts(
    bus: InMemoryBus,
) -> None:
    for h in ("h1", "h2", "h3"):
        bus.submit_many(host_says(h))
    template_id = register(bus)  # no checksum

    first, cmd = start(bus, template_id, host_id="h1")
    bus.submit(completed(cmd, "h1", digest=OTHER))
    succeeded(bus, first)

    second, cmd = start(bus, template_id, host_id="h2")
    bus.submit(completed(cmd, "h2", digest=CHECKSUM))
    attempt = failure(bus.reply_for(second))["attempts"][0]
    assert attempt["error_code"] == "DIGEST_MISMATCH" and OTHER in attempt["message"]

    third, cmd = start(bus, template_id, host_id="h3")
    bus.submit(completed(cmd, "h3", digest=OTHER.upper().replace("SHA-256", "SHA256")))
    reply = bus.reply_for(third)
    assert reply is not None and reply.ok


def test_a_failed_copy_does_not_become_the_digest_later_copies_must_match(
    bus: InMemoryBus,
) -> None:
    bus.submit_many(host_says("h1"))
    template_id = register(bus)
    first, cmd = start(bus, template_id)
    bus.submit(completed(cmd, "h1", size=SIZE + 1, digest=OTHER))  # refused for its size
    failure(bus.reply_for(first))

    second, cmd = start(bus, template_id)
    bus.submit(completed(cmd, "h1", digest=CHECKSUM))
    reply = bus.reply_for(second)
    assert reply is not None and reply.ok


def test_a_size_other_than_the_sources_is_a_mismatch(bus: InMemoryBus) -> None:
    bus.submit_many(host_says("h1"))
    correlation, cmd = start(bus, register(bus, checksum=CHECKSUM))
    bus.submit(completed(cmd, "h1", size=SIZE - 1))
    attempt = failure(bus.reply_for(correlation))["attempts"][0]
    assert attempt["error_code"] == "DIGEST_MISMATCH" and str(SIZE) in attempt["message"]


def test_a_compressed_source_is_stored_bigger_than_it_was_sent(bus: InMemoryBus) -> None:
    bus.submit_many(host_says("h1"))
    template_id = register(bus, url="https://images.example/c.qcow2.xz", checksum=CHECKSUM)
    correlation, cmd = start(bus, template_id)
    bus.submit(completed(cmd, "h1", size=SIZE * 3))
    reply = bus.reply_for(correlation)
    assert reply is not None and reply.ok and reply.result["size"] == SIZE * 3
