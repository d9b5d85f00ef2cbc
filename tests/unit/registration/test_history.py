"""Deploy history on the in-memory bus: progress recorded per attempt, deploy.list and
deploy.get, and deploy ids the caller chooses."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from directdl.bus.memory import InMemoryBus
from directdl.contracts import deploy, download
from directdl.contracts import template as tpl
from directdl.contracts.senders import host_user
from directdl_testing.messages import host_says, report

pytestmark = pytest.mark.unit

CHECKSUM = "{SHA-256}" + "ab" * 32
SIZE = 4096  # what the conftest's URL check says every source holds


def register(bus: InMemoryBus, zone_id: str | list[str] = "zone-1") -> str:
    reply = bus.call(
        tpl.RegisterTemplate(
            name=str(uuid.uuid4()),
            url="https://images.example/c.qcow2",
            zone_id=zone_id,
            hypervisor="KVM",
            format="QCOW2",
            checksum=CHECKSUM,
        )
    )
    assert reply.ok, reply.error
    return str(reply.result["template"]["id"])


def downloads(bus: InMemoryBus) -> list[tuple[str, dict[str, Any]]]:
    return [(key, body) for key, body in bus.events if key.endswith(".template.download")]


def start(bus: InMemoryBus, template_id: str, **kw: Any) -> tuple[str, str, dict[str, Any]]:
    """Deploy: the correlation id, the host chosen and the download command it was sent."""
    before = len(downloads(bus))
    correlation = bus.submit(deploy.DeployTemplate(template_id=template_id, **kw))
    [(key, cmd)] = downloads(bus)[before:]
    return correlation, key.split(".")[1], cmd


def progress(cmd: dict[str, Any], host_id: str, done: int, **kw: Any) -> download.DownloadProgress:
    return download.DownloadProgress(
        **report(cmd, host_id, **kw), bytes_done=done, total=SIZE, rate_bps=1000.0
    )


def completed(cmd: dict[str, Any], host_id: str) -> download.DownloadCompleted:
    return download.DownloadCompleted(
        **report(cmd, host_id),
        path=f"/pools/{host_id}/{cmd['template_id']}",
        size=SIZE,
        digest=CHECKSUM,
        cached=False,
        duration_s=1.0,
    )


def get(bus: InMemoryBus, deploy_id: str) -> dict[str, Any]:
    reply = bus.call(deploy.GetDeploy(deploy_id=deploy_id))
    assert reply.ok, reply.error
    return reply.result


@pytest.fixture
def template_id(bus: InMemoryBus) -> str:
    bus.submit_many(host_says("h1"))
    return register(bus)


def test_a_started_deploy_without_progress_is_queued_on_its_host(
    bus: InMemoryBus, template_id: str
) -> None:
    _, host, cmd = start(bus, template_id, zone_id="zone-1")
    view = get(bus, cmd["deploy_id"])
    assert (view["state"], view["queued"], view["host_id"]) == ("RUNNING", True, host)
    assert view["bytes_done"] is None
    [attempt] = view["attempts"]
    assert attempt["progress_at"] is None


def test_progress_is_recorded_on_the_running_attempt_and_ends_the_queue(
    bus: InMemoryBus, template_id: str
) -> None:
    _, host, cmd = start(bus, template_id, zone_id="zone-1")
    bus.submit(progress(cmd, host, 1024))
    bus.submit(progress(cmd, host, 2048))
    view = get(bus, cmd["deploy_id"])
    assert view["queued"] is False
    assert (view["bytes_done"], view["total"], view["rate_bps"]) == (2048, SIZE, 1000.0)
    [attempt] = view["attempts"]
    assert (attempt["bytes_done"], attempt["total"]) == (2048, SIZE)
    assert attempt["progress_at"] is not None


def test_progress_leaves_no_inbox_row(bus: InMemoryBus, template_id: str) -> None:
    _, host, cmd = start(bus, template_id, zone_id="zone-1")
    event = progress(cmd, host, 10)
    bus.submit_raw(
        event.routing_key,
        event.model_dump_json().encode(),
        message_id="progress-1",
        user_id=host_user(host),
    )
    with bus.sessions() as session:
        assert bus.store.find_processed(session, "progress-1") is None
    assert get(bus, cmd["deploy_id"])["bytes_done"] == 10


def test_progress_from_another_host_or_for_another_attempt_is_ignored(
    bus: InMemoryBus, template_id: str
) -> None:
    bus.submit_many(host_says("h2"))
    _, host, cmd = start(bus, template_id, zone_id="zone-1", host_id="h1")
    bus.submit(progress(cmd, "h2", 999))  # h2 claims h1's job, as itself
    bus.submit(progress(cmd, host, 999, deploy_id=str(uuid.uuid4())))
    bus.submit(progress(cmd, host, 999, job_id=str(uuid.uuid4())))
    bus.submit(progress(cmd, host, 999, template_id=str(uuid.uuid4())))
    view = get(bus, cmd["deploy_id"])
    assert view["queued"] is True
    assert view["bytes_done"] is None


def test_progress_after_the_attempt_ended_changes_nothing(
    bus: InMemoryBus, template_id: str
) -> None:
    _, host, cmd = start(bus, template_id, zone_id="zone-1")
    bus.submit(progress(cmd, host, 100))
    bus.submit(completed(cmd, host))
    bus.submit(progress(cmd, host, 100))  # late, out of order
    view = get(bus, cmd["deploy_id"])
    assert view["state"] == "SUCCEEDED"
    assert (view["bytes_done"], view["total"]) == (SIZE, SIZE), "the completion's size"


def test_a_succeeded_deploy_says_where_the_template_is(bus: InMemoryBus, template_id: str) -> None:
    _, host, cmd = start(bus, template_id, zone_id="zone-1")
    bus.submit(completed(cmd, host))
    view = get(bus, cmd["deploy_id"])
    assert view["state"] == "SUCCEEDED" and view["queued"] is False
    assert view["host_id"] == host
    assert view["path"] == f"/pools/{host}/{template_id}"
    assert (view["size"], view["digest"], view["cached"]) == (SIZE, CHECKSUM, False)
    assert view["duration_s"] >= 0
    assert view.get("code") is None


def test_a_failed_deploy_gives_its_code_and_reason(bus: InMemoryBus, template_id: str) -> None:
    _, host, cmd = start(bus, template_id, zone_id="zone-1")
    bus.submit(
        download.DownloadFailed(**report(cmd, host), code="NOT_FOUND", message="404 from source")
    )
    view = get(bus, cmd["deploy_id"])
    assert (view["state"], view["code"]) == ("FAILED", "NOT_FOUND")
    assert "404 from source" in view["message"]
    assert view["attempts"][0]["error_code"] == "NOT_FOUND"
    assert view.get("path") is None


def test_get_of_an_unknown_deploy_is_not_found(bus: InMemoryBus) -> None:
    missing = str(uuid.uuid4())
    reply = bus.call(deploy.GetDeploy(deploy_id=missing))
    assert reply.error is not None
    assert reply.error.code == "NOT_FOUND"
    assert reply.error.details == {"field": "deploy_id", "value": missing}


def test_a_deploy_id_the_caller_chose_is_the_deploys(bus: InMemoryBus, template_id: str) -> None:
    chosen = str(uuid.uuid4())
    _, _, cmd = start(bus, template_id, zone_id="zone-1", deploy_id=chosen)
    assert cmd["deploy_id"] == chosen
    assert get(bus, chosen)["deploy_id"] == chosen


def test_a_deploy_id_already_taken_is_a_conflict(bus: InMemoryBus, template_id: str) -> None:
    chosen = str(uuid.uuid4())
    start(bus, template_id, zone_id="zone-1", deploy_id=chosen)
    reply = bus.call(
        deploy.DeployTemplate(template_id=template_id, zone_id="zone-1", deploy_id=chosen)
    )
    assert reply.error is not None
    assert reply.error.code == "CONFLICT"
    assert reply.error.details == {"field": "deploy_id", "value": chosen}
    assert len(downloads(bus)) == 1, "no second download"


def test_a_deploy_id_must_be_a_uuid() -> None:
    with pytest.raises(ValueError, match="deploy_id"):
        deploy.DeployTemplate(template_id="t", zone_id="z", deploy_id="x" * 40)


def test_without_a_deploy_id_registration_makes_one(bus: InMemoryBus, template_id: str) -> None:
    _, _, cmd = start(bus, template_id, zone_id="zone-1")
    assert uuid.UUID(cmd["deploy_id"])


def ids(bus: InMemoryBus, **filters: Any) -> list[str]:
    reply = bus.call(deploy.ListDeploys(**filters))
    assert reply.ok, reply.error
    return [item["deploy_id"] for item in reply.result["items"]]


def test_list_filters_by_template_zone_host_and_state(bus: InMemoryBus) -> None:
    bus.submit_many(host_says("h1"))
    bus.submit_many(host_says("h2", zone_id="zone-2"))
    one = register(bus, ["zone-1", "zone-2"])
    two = register(bus)
    _, h1, a = start(bus, one, zone_id="zone-1")
    _, h2, b = start(bus, one, zone_id="zone-2")
    _, _, c = start(bus, two, zone_id="zone-1")
    bus.submit(completed(a, h1))
    a_id, b_id, c_id = a["deploy_id"], b["deploy_id"], c["deploy_id"]

    assert ids(bus) == [c_id, b_id, a_id], "newest first"
    assert ids(bus, template_id=one) == [b_id, a_id]
    assert ids(bus, zone_id="zone-2") == [b_id]
    assert ids(bus, host_id=h1) == [c_id, a_id]
    assert ids(bus, host_id=h2) == [b_id]
    assert ids(bus, state="SUCCEEDED") == [a_id]
    assert ids(bus, state="RUNNING", template_id=one) == [b_id]
    assert ids(bus, host_id="nowhere") == []


def test_list_pages(bus: InMemoryBus, template_id: str) -> None:
    made = [start(bus, template_id, zone_id="zone-1")[2]["deploy_id"] for _ in range(5)]
    newest_first = made[::-1]
    reply = bus.call(deploy.ListDeploys(page=2, page_size=2))
    assert reply.ok
    assert (reply.result["total"], reply.result["page"], reply.result["page_size"]) == (5, 2, 2)
    assert [i["deploy_id"] for i in reply.result["items"]] == newest_first[2:4]
    assert ids(bus, page=3, page_size=2) == newest_first[4:]
    assert ids(bus, page=4, page_size=2) == []
