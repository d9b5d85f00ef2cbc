"""The deploy state machine on its own: no bus, no database, only the domain's objects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from directdl.contracts.deploy import AttemptState, DeployTemplate, TemplateDeployFailed
from directdl.contracts.download import DownloadCompleted, DownloadFailure, RecoveredJob
from directdl.contracts.errors import ErrorCode, MessageError
from directdl.contracts.host import HostState, PoolStatus, StoredTemplate
from directdl.contracts.template import SourceProtocol, TemplateFormat, TemplateType
from registration.domain.deploy import (
    MAX_HOSTS,
    Deploy,
    Step,
    attempt_abandoned,
    attempt_completed,
    attempt_failed,
    host_gone,
    not_resumed,
    start,
)
from registration.domain.host import Host
from registration.domain.template import Template

pytestmark = pytest.mark.unit

NOW = datetime(2026, 1, 1, tzinfo=UTC)
DIGEST = "{SHA-256}" + "ab" * 32
TEMPLATE = Template(
    id="t1",
    name="centos",
    url="https://images.example/c.qcow2",
    protocol=SourceProtocol.HTTPS,
    zone_ids=("zone-1",),
    hypervisor="KVM",
    format=TemplateFormat.QCOW2,
    checksum=DIGEST,
    template_type=TemplateType.USER,
)


def pool(pool_id: str, free: int) -> PoolStatus:
    return PoolStatus(pool_id=pool_id, capacity_bytes=10**12, free_bytes=free)


def host(host_id: str, *pools: PoolStatus, **kw: Any) -> Host:
    fields: dict[str, Any] = {
        "host_id": host_id,
        "zone_id": "zone-1",
        "cluster_id": "c1",
        "state": HostState.UP,
        "last_seen": NOW,
        "interval_seconds": 5.0,
        "pools": pools or (pool(f"pool-{host_id}", 10**11),),
    }
    return Host(**(fields | kw))


def begin(hosts: list[Host], **kw: Any) -> Step:
    cmd = DeployTemplate(template_id="t1", zone_id="zone-1", **kw)
    return start(cmd, TEMPLATE, hosts, NOW, reply_to="amq.rabbitmq.reply-to", correlation_id="c")


def chosen(step: Step) -> str:
    assert step.started is not None
    return step.started.host_id


def completion(deploy: Deploy, **kw: Any) -> DownloadCompleted:
    attempt = deploy.running_attempt
    assert attempt is not None
    fields: dict[str, Any] = {
        "job_id": attempt.job_id,
        "deploy_id": deploy.deploy_id,
        "template_id": deploy.template_id,
        "host_id": attempt.host_id,
        "pool_id": f"pool-{attempt.host_id}",
        "path": "/p/t1",
        "size": 1,
        "digest": DIGEST,
        "cached": False,
        "duration_s": 1.0,
    }
    return DownloadCompleted(**(fields | kw))


def fail(step: Step, code: DownloadFailure, hosts: list[Host]) -> Step:
    assert step.started is not None
    return attempt_failed(step.deploy, step.started.job_id, code, "it broke", hosts, NOW)


def test_a_deploy_starts_running_with_one_attempt_and_nothing_ended() -> None:
    step = begin([host("h1")])
    assert step.deploy.state is AttemptState.RUNNING
    assert step.started is not None and step.started.host_id == "h1"
    assert step.deploy.attempts == (step.started,)
    assert step.ended is None and step.reply is None


def test_the_host_with_most_room_in_the_requested_pool_wins_not_the_most_in_all() -> None:
    roomy_elsewhere = host("h1", pool("shared", 10), pool("local", 10**12))
    roomy_there = host("h2", pool("shared", 1000))
    assert chosen(begin([roomy_elsewhere, roomy_there], pool_id="shared")) == "h2"


def test_without_a_pool_the_roomiest_pool_of_each_host_counts_and_pools_are_not_summed() -> None:
    many_small = host("h1", pool("a", 600), pool("b", 600))
    one_big = host("h2", pool("c", 1000))
    assert chosen(begin([many_small, one_big])) == "h2"


def test_a_host_that_holds_the_template_wins_over_room() -> None:
    stored = StoredTemplate(template_id="t1", pool_id="p", path="/p", size=1, digest=DIGEST)
    full = host("h2", pool("p", 0), templates=(stored,))
    assert chosen(begin([host("h1"), full])) == "h2"


def test_no_usable_host_refuses_to_start() -> None:
    silent = host("h1", last_seen=NOW - timedelta(minutes=5))
    down = host("h2", state=HostState.DOWN)
    elsewhere = host("h3", zone_id="zone-2")
    with pytest.raises(MessageError) as err:
        begin([silent, down, elsewhere])
    assert err.value.code is ErrorCode.UNAVAILABLE


def test_a_named_host_must_be_in_the_zone_and_up() -> None:
    with pytest.raises(MessageError) as missing:
        begin([host("h1", zone_id="zone-2")], host_id="h1")
    with pytest.raises(MessageError) as down:
        begin([host("h1", state=HostState.DOWN)], host_id="h1")
    assert missing.value.code is ErrorCode.NOT_FOUND
    assert down.value.code is ErrorCode.UNAVAILABLE


def test_a_completion_ends_the_deploy_with_its_event_and_reply() -> None:
    deploy = begin([host("h1")]).deploy
    step = attempt_completed(deploy, completion(deploy, cached=True), NOW + timedelta(seconds=2))
    assert step.deploy.state is AttemptState.SUCCEEDED
    assert [a.state for a in step.deploy.attempts] == [AttemptState.SUCCEEDED]
    assert step.ended is not None and step.ended.routing_key == "template.deployed"
    assert step.deploy.outcome is not None
    assert step.reply is not None and step.reply.ok
    assert step.reply.result is not None and step.reply.result["duration_s"] == 2.0


def test_a_failure_another_host_may_fix_moves_on_each_host_once_at_most_three() -> None:
    hosts = [host(f"h{n}") for n in range(1, 6)]
    step = begin(hosts)
    for _ in range(MAX_HOSTS - 1):
        step = fail(step, DownloadFailure.CONNECTION, hosts)
        assert step.ended is None and step.started is not None
    step = fail(step, DownloadFailure.CONNECTION, hosts)
    assert step.started is None and step.deploy.state is AttemptState.FAILED
    assert len({a.host_id for a in step.deploy.attempts}) == MAX_HOSTS
    assert step.ended is not None and step.ended.routing_key == "template.deploy.failed"


@pytest.mark.parametrize("code", list(DownloadFailure))
def test_the_code_alone_decides_whether_the_deploy_moves_on(code: DownloadFailure) -> None:
    hosts = [host("h1"), host("h2")]
    step = fail(begin(hosts), code, hosts)
    assert (step.started is not None) is code.another_host_may_succeed
    if isinstance(step.ended, TemplateDeployFailed):
        assert step.ended.code is code
        assert step.deploy.attempts[0].error_code is code


def test_a_failure_with_no_host_left_ends_the_deploy_and_answers_with_every_attempt() -> None:
    step = fail(begin([host("h1")]), DownloadFailure.TLS, [host("h1")])
    assert step.reply is not None and step.reply.error is not None
    assert step.reply.error.code is ErrorCode.DOWNLOAD_FAILED
    assert "h1: TLS: it broke" in step.reply.error.message
    [attempt] = step.reply.error.details["attempts"]
    assert (attempt["state"], attempt["error_code"]) == ("FAILED", "TLS")


def test_no_one_waiting_means_no_reply() -> None:
    cmd = DeployTemplate(template_id="t1", zone_id="zone-1")
    step = start(cmd, TEMPLATE, [host("h1")], NOW, reply_to=None, correlation_id=None)
    ended = fail(step, DownloadFailure.NOT_FOUND, [])
    assert ended.ended is not None and ended.reply is None


def test_a_settled_attempt_cannot_be_settled_again() -> None:
    step = fail(begin([host("h1")]), DownloadFailure.NOT_FOUND, [])
    job_id = step.deploy.attempts[0].job_id
    with pytest.raises(ValueError, match=job_id):
        attempt_failed(step.deploy, job_id, DownloadFailure.NOT_FOUND, "again", [], NOW)


def test_an_attempt_waits_while_its_host_is_up_only() -> None:
    attempt = begin([host("h1")]).started
    assert attempt is not None
    assert host_gone(attempt, host("h1"), NOW) is None
    assert host_gone(attempt, host("h1", state=HostState.DOWN), NOW) == "host h1 is not Up"
    assert host_gone(attempt, None, NOW) == "host h1 is not Up"


def test_an_attempt_given_up_on_fails_as_host_down_and_is_to_be_cancelled() -> None:
    hosts = [host("h1"), host("h2")]
    first = begin(hosts)
    assert first.started is not None and first.cancelled is None
    step = attempt_abandoned(first.deploy, first.started.job_id, "host h1 is not Up", hosts, NOW)
    assert step.cancelled is not None
    assert (step.cancelled.job_id, step.cancelled.host_id) == (first.started.job_id, "h1")
    assert (step.cancelled.state, step.cancelled.error_code) == (
        AttemptState.FAILED,
        DownloadFailure.HOST_DOWN,
    )
    assert step.started is not None and step.started.host_id == "h2"


def test_an_attempt_its_host_said_failed_is_not_to_be_cancelled_whatever_its_code() -> None:
    for code in DownloadFailure:
        hosts = [host("h1"), host("h2")]
        assert fail(begin(hosts), code, hosts).cancelled is None, code


def test_the_completion_carries_the_image_digest_into_the_outcome() -> None:
    deploy = begin([host("h1")]).deploy
    image = "{SHA-256}" + "cd" * 32
    step = attempt_completed(deploy, completion(deploy, image_digest=image), NOW)
    assert step.ended is not None and step.ended.routing_key == "template.deployed"
    assert step.deploy.outcome is not None
    assert step.deploy.outcome.model_dump()["image_digest"] == image
    assert step.reply is not None and step.reply.result is not None
    assert step.reply.result["image_digest"] == image


def recovered_job(step: Step, **kw: Any) -> RecoveredJob:
    assert step.started is not None
    fields: dict[str, Any] = {
        "job_id": step.started.job_id,
        "deploy_id": step.deploy.deploy_id,
        "template_id": "t1",
        "bytes_kept": 0,
    }
    return RecoveredJob(**(fields | kw))


def test_a_recovered_job_is_resumed_only_as_its_deploys_running_attempt_on_that_host() -> None:
    step = begin([host("h1")])
    job = recovered_job(step)
    assert not_resumed(step.deploy, job, "h1") is None
    assert not_resumed(None, job, "h1") == f"no deploy has an attempt {job.job_id}"
    assert "another host" in str(not_resumed(step.deploy, job, "h2"))
    assert "is no attempt of deploy d9" in str(
        not_resumed(step.deploy, recovered_job(step, deploy_id="d9"), "h1")
    )
    assert "is no attempt" in str(
        not_resumed(step.deploy, recovered_job(step, template_id="t9"), "h1")
    )
    ended = fail(step, DownloadFailure.NOT_FOUND, [])
    assert str(not_resumed(ended.deploy, job, "h1")).endswith("has ended: FAILED NOT_FOUND")
