"""Deploy history end to end: registration and one host agent as processes, the CLI's
`template deploy --no-wait`, `deploy show`, `deploy list` and `deploy follow`."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from directdl_testing.nginx import Nginx

pytestmark = pytest.mark.e2e

BEAT = "0.5"


@pytest.fixture
def nginx() -> Iterator[Nginx]:
    with Nginx(slow_rate="2m") as server:
        yield server


@pytest.fixture
def agent(start_service: Callable[..., Any]) -> Any:
    start_service("registration", extra_env={"REGISTRATION_WATCHDOG_INTERVAL": BEAT})
    return start_service(
        "host_agent",
        env_prefix="HOST_AGENT",
        extra_env={
            "HOST_AGENT_HOST_ID": "host-1",
            "HOST_AGENT_ZONE_ID": "zone-1",
            "HOST_AGENT_POOL_ID": "pool-host-1",
            "HOST_AGENT_HEARTBEAT_INTERVAL": BEAT,
            # One at a time: a second deploy waits for the worker, queued.
            "HOST_AGENT_DOWNLOAD_WORKERS": "1",
        },
    )


def register(cli: Any, url: str, data: bytes) -> str:
    result = cli(
        "template", "register", "--name", f"t-{uuid.uuid4()}", "--url", url, "--zone", "zone-1",
        "--format", "RAW", "--checksum", hashlib.sha256(data).hexdigest(), "--json",
    )  # fmt: skip
    assert result.code == 0, result
    return str(result.json()["result"]["template"]["id"])


def deploy_no_wait(cli: Any, template_id: str) -> str:
    started = cli("template", "deploy", "--template", template_id, "--zone", "zone-1", "--no-wait")
    assert started.code == 0, started
    deploy_id = started.stdout.strip()
    assert str(uuid.UUID(deploy_id)) == deploy_id
    return deploy_id


def ended(cli: Any, deploy_id: str, within: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        shown = cli("deploy", "show", deploy_id, "--json")
        if shown.code == 0 and shown.json()["result"]["state"] != "RUNNING":
            return dict(shown.json()["result"])
        assert time.monotonic() < deadline, shown
        time.sleep(0.3)


def test_a_deploy_started_without_waiting_is_shown_and_listed_once_it_ends(
    agent: Any, cli: Any, nginx: Nginx
) -> None:
    data = os.urandom(2**20)
    nginx.add_file("one.raw", data)
    template_id = register(cli, f"{nginx.http_url}/one.raw", data)

    deploy_id = deploy_no_wait(cli, template_id)
    view = ended(cli, deploy_id)
    listed = cli("deploy", "list", "--template", template_id, "--json")
    table = cli("deploy", "show", deploy_id, env={"COLUMNS": "200"})

    assert view["state"] == "SUCCEEDED", view
    assert view["host_id"] == "host-1"
    assert view["bytes_done"] == view["size"] == len(data)
    assert [a["state"] for a in view["attempts"]] == ["SUCCEEDED"]
    assert listed.code == 0, listed
    assert [d["deploy_id"] for d in listed.json()["result"]["items"]] == [deploy_id]
    assert table.code == 0 and "1.0 MiB of 1.0 MiB" in table.stdout


def test_follow_attaches_to_a_running_deploy_until_it_succeeds(
    agent: Any, cli: Any, nginx: Nginx
) -> None:
    data = os.urandom(4 * 2**20)  # two seconds at the slow location's 2 MB/s
    nginx.add_file("slow.raw", data)
    template_id = register(cli, f"{nginx.http_url}/slow/slow.raw", data)

    deploy_id = deploy_no_wait(cli, template_id)
    followed = cli("deploy", "follow", deploy_id, "--json")

    assert followed.code == 0, followed
    view = followed.json()["result"]
    assert (view["deploy_id"], view["state"]) == (deploy_id, "SUCCEEDED")
    assert view["bytes_done"] == len(data)
    assert f"deploy {deploy_id} " not in followed.stderr, "--json says nothing on stderr"


def test_a_deploy_waiting_for_the_worker_says_it_is_queued_then_ends(
    agent: Any, cli: Any, nginx: Nginx
) -> None:
    busy, waiting = os.urandom(16 * 2**20), os.urandom(2**20)
    nginx.add_file("busy.raw", busy)
    nginx.add_file("waiting.raw", waiting)
    first = register(cli, f"{nginx.http_url}/slow/busy.raw", busy)
    second = register(cli, f"{nginx.http_url}/slow/waiting.raw", waiting)

    deploy_no_wait(cli, first)  # holds the one worker for seconds
    done = cli("template", "deploy", "--template", second, "--zone", "zone-1")

    assert done.code == 0, done
    deploy_id = done.stderr.split()[1]
    assert done.stderr.startswith(f"deploy {deploy_id}\n")
    assert "queued on host-1 (waiting for a free download worker)" in done.message
    assert "deployed" in done.stdout
    assert ended(cli, deploy_id)["bytes_done"] == len(waiting)
