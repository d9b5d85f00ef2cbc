"""A download survives its agent's SIGKILL; abandoned work stops; copies leave the pools."""

from __future__ import annotations

import hashlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from directdl.bus.client import BusClient
from directdl.contracts import deploy
from directdl_testing.nginx import Nginx
from directdl_testing.recorder import MessageRecorder
from directdl_testing.waiting import wait_until

pytestmark = pytest.mark.e2e

FAST_BEAT = "0.5"
# nginx's per-connection rate for /slow/: a 16 MiB file takes 4 s, long enough to kill mid-way.
SLOW_RATE = "4m"
RESUME_GOAL = 1.05


@pytest.fixture
def nginx() -> Iterator[Nginx]:
    with Nginx(slow_rate=SLOW_RATE) as server:
        yield server


def start_registration(start_service: Callable[..., Any], beat: str) -> Any:
    return start_service("registration", extra_env={"REGISTRATION_WATCHDOG_INTERVAL": beat})


def start_agent(start_service: Callable[..., Any], host_id: str, beat: str) -> Any:
    own = {
        "HOST_AGENT_HOST_ID": host_id,
        "HOST_AGENT_ZONE_ID": "zone-1",
        "HOST_AGENT_POOL_ID": f"pool-{host_id}",
        "HOST_AGENT_HEARTBEAT_INTERVAL": beat,
    }
    agent = start_service("host_agent", env_prefix="HOST_AGENT", extra_env=own)
    agent.env.update(own)  # so that it starts again as the same host
    return agent


def pool(data_dir: Path, host_id: str) -> Path:
    return data_dir / "host_agent" / "pools" / host_id


def files_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def register(cli: Any, nginx: Nginx, name: str, data: bytes, *, slow: bool = True) -> str:
    nginx.add_file(name, data)
    url = f"{nginx.http_url}/{'slow/' if slow else ''}{name}"
    result = cli(
        "template",
        "register",
        "--name",
        name,
        "--url",
        url,
        "--zone",
        "zone-1",
        "--format",
        "RAW",
        "--checksum",
        hashlib.sha256(data).hexdigest(),
        "--json",
    )
    assert result.code == 0, result
    return str(result.json()["result"]["template"]["id"])


def start_deploy(client: BusClient, template_id: str, correlation_id: str, **where: str) -> None:
    command = deploy.DeployTemplate(template_id=template_id, zone_id="zone-1", **where)
    client.publish(
        "template.deploy",
        command.model_dump_json(exclude_none=True).encode(),
        reply_to="amq.rabbitmq.reply-to",
        correlation_id=correlation_id,
    )


def deployed(client: BusClient, template_id: str, name: str, **where: str) -> dict[str, Any]:
    start_deploy(client, template_id, name, **where)
    reply = client.wait_reply(name, timeout=60)
    assert reply.ok, reply.error
    assert reply.result is not None
    return reply.result


def body_bytes(nginx: Nginx, name: str) -> int:
    return sum(e.body_bytes_sent for e in nginx.access_log_lines() if e.uri.endswith(f"/{name}"))


def test_an_agent_sigkilled_mid_download_resumes_and_nginx_sends_the_file_about_once(
    start_service: Callable[..., Any],
    cli: Any,
    nginx: Nginx,
    client: BusClient,
    recorder: MessageRecorder,
    data_dir: Path,
) -> None:
    # Heartbeats every 3 s: the host is Down only after 9 s of silence, and it is back in 1.
    start_registration(start_service, "1")
    agent = start_agent(start_service, "host-1", "3")
    data = os.urandom(16 * 2**20)
    template_id = register(cli, nginx, "resume.raw", data)

    start_deploy(client, template_id, "resume")

    def a_third_done() -> bool:
        recorder.poll(0.1)
        return any(
            m.body["bytes_done"] >= len(data) // 3
            for m in recorder.messages
            if m.routing_key == "template.download.progress"
        )

    wait_until(a_third_done, timeout=20, what="a third of the file downloaded")
    agent.kill(signal.SIGKILL)
    time.sleep(1)
    agent.start()

    reply = client.wait_reply("resume", timeout=60)
    assert reply.ok, reply.error
    assert reply.result is not None
    assert [(a["host_id"], a["state"]) for a in reply.result["attempts"]] == [
        ("host-1", "SUCCEEDED")
    ]
    assert (pool(data_dir, "host-1") / template_id).read_bytes() == data
    requests = [
        e for e in nginx.access_log_lines() if e.uri.endswith("/resume.raw") and e.method == "GET"
    ]
    sent = sum(e.body_bytes_sent for e in requests)
    ratio = sent / len(data)
    print(
        f"\nresume after SIGKILL: nginx sent {sent} bytes for a {len(data)}-byte file: "
        f"{ratio:.3f}x (goal <= {RESUME_GOAL}x)"
    )
    assert [e.status for e in requests] == [200, 206], requests
    assert requests[1].if_range, "the resumed request names the version it continues"
    assert ratio <= RESUME_GOAL
    [recovered] = agent.find_logs("jobs.recovered")
    assert recovered["bytes_kept"] >= len(data) // 3


def test_a_host_kept_down_until_its_deploy_failed_over_fetches_nothing_when_it_returns(
    start_service: Callable[..., Any],
    cli: Any,
    nginx: Nginx,
    client: BusClient,
    recorder: MessageRecorder,
    data_dir: Path,
) -> None:
    start_registration(start_service, FAST_BEAT)
    agents = {h: start_agent(start_service, h, FAST_BEAT) for h in ("host-1", "host-2")}
    data = os.urandom(16 * 2**20)
    template_id = register(cli, nginx, "failover.raw", data)

    start_deploy(client, template_id, "failover")
    first = recorder.expect("template.download.progress", timeout=20)[0].body["host_id"]
    other = next(h for h in agents if h != first)
    agents[first].kill(signal.SIGKILL)
    reply = client.wait_reply("failover", timeout=60)
    assert reply.ok, reply.error
    assert reply.result is not None and reply.result["host_id"] == other
    fetched_before_return = body_bytes(nginx, "failover.raw")
    log_lines_before_return = len(nginx.access_log_lines())

    agents[first].start()
    agents[first].wait_for_log("jobs.recovered", timeout=10)
    # Two cancels reach it: the one sent when the deploy gave up on it, waiting in its queue,
    # and registration's answer to what it recovered. Once both are handled the job has ended
    # (CANCELLED), and nothing can fetch for it any more.
    cancel = f"host.{first}.template.download.cancel"
    wait_until(
        lambda: len(agents[first].find_logs("message.handled", routing_key=cancel)) == 2,
        timeout=10,
        what="both cancels handled",
    )
    wait_until(lambda: files_in(pool(data_dir, first)) == [], timeout=10, what="an empty pool")
    assert len(nginx.access_log_lines()) == log_lines_before_return
    assert body_bytes(nginx, "failover.raw") == fetched_before_return
    assert files_in(pool(data_dir, other)) == [template_id]
    print(
        f"\nfailed over: nginx sent {fetched_before_return / len(data):.3f}x the file in all; "
        "nothing more once the first host returned"
    )


def test_deleting_a_template_empties_every_pool_and_each_host_says_what_it_removed(
    start_service: Callable[..., Any],
    cli: Any,
    nginx: Nginx,
    client: BusClient,
    recorder: MessageRecorder,
    data_dir: Path,
) -> None:
    start_registration(start_service, FAST_BEAT)
    for host_id in ("host-1", "host-2"):
        start_agent(start_service, host_id, FAST_BEAT)
    data = os.urandom(2**20)
    template_id = register(cli, nginx, "deleted.raw", data, slow=False)
    for host_id in ("host-1", "host-2"):
        deployed(client, template_id, f"to-{host_id}", host_id=host_id)
        assert files_in(pool(data_dir, host_id)) == [template_id]

    result = cli("template", "delete", template_id)
    assert result.code == 0, result

    reports = recorder.expect("template.copies.removed", timeout=15, count=2)
    assert sorted(r.body["host_id"] for r in reports) == ["host-1", "host-2"]
    for report in reports:
        assert [(c["template_id"], c["size"], c["reason"]) for c in report.body["removed"]] == [
            (template_id, len(data), "DELETED")
        ]
    for host_id in ("host-1", "host-2"):
        assert files_in(pool(data_dir, host_id)) == []


def test_a_pool_over_its_cap_evicts_the_least_recently_used_and_keeps_the_one_deployed(
    start_service: Callable[..., Any],
    cli: Any,
    nginx: Nginx,
    client: BusClient,
    recorder: MessageRecorder,
    data_dir: Path,
) -> None:
    start_registration(start_service, FAST_BEAT)
    start_agent(start_service, "host-1", FAST_BEAT)
    mib = 2**20
    # Room for two copies of 1 MiB, not three.
    result = cli("settings", "set", "directdl.pool.cache.max.bytes", str(2 * mib + mib // 2))
    assert result.code == 0, result
    a, b, c = (register(cli, nginx, f"{name}.raw", os.urandom(mib), slow=False) for name in "abc")
    deployed(client, a, "a")
    deployed(client, b, "b")
    again = deployed(client, a, "a-again")  # from the pool: now a is used more recently than b
    assert again["cached"] is True
    deployed(client, c, "c")

    [report] = recorder.expect("template.copies.removed", timeout=15)
    assert [(x["template_id"], x["reason"]) for x in report.body["removed"]] == [(b, "CAP")]
    assert files_in(pool(data_dir, "host-1")) == sorted([a, c])

    # A cap smaller than one copy: the copy just deployed stays all the same; the others go.
    result = cli("settings", "set", "directdl.pool.cache.max.bytes", str(mib // 2))
    assert result.code == 0, result
    deployed(client, b, "b-again")
    wait_until(lambda: files_in(pool(data_dir, "host-1")) == [b], timeout=15, what="only b left")
