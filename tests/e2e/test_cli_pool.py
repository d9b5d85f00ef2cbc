"""`directdl hosts --templates` and `directdl template evict`, against registration and an agent."""

from __future__ import annotations

import hashlib
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from directdl_testing.nginx import Nginx
from directdl_testing.waiting import wait_until

if TYPE_CHECKING:
    from directdl_testing.processes import ServiceProcess
    from tests.e2e.conftest import Cli, CliResult

pytestmark = pytest.mark.e2e

BEAT = "0.5"
HOST = "host-1"
WIDE = {"COLUMNS": "250"}  # a table row on one line, as piped output has it


@pytest.fixture
def nginx() -> Iterator[Nginx]:
    with Nginx() as server:
        yield server


@pytest.fixture
def agent(start_service: Callable[..., Any]) -> ServiceProcess:
    start_service("registration", extra_env={"REGISTRATION_WATCHDOG_INTERVAL": BEAT})
    process: ServiceProcess = start_service(
        "host_agent",
        env_prefix="HOST_AGENT",
        extra_env={
            "HOST_AGENT_HOST_ID": HOST,
            "HOST_AGENT_ZONE_ID": "zone-1",
            "HOST_AGENT_POOL_ID": f"pool-{HOST}",
            "HOST_AGENT_HEARTBEAT_INTERVAL": BEAT,
        },
    )
    return process


def ok(result: CliResult) -> CliResult:
    assert result.code == 0, f"exit {result.code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    return result


def deployed(cli: Cli, nginx: Nginx, data: bytes) -> str:
    """A RAW template registered and deployed on the agent; its id."""
    nginx.add_file("pooled.raw", data)
    template_id = str(
        ok(
            cli(
                "template",
                "register",
                "--name",
                "pooled",
                "--url",
                f"{nginx.http_url}/pooled.raw",
                "--zone",
                "zone-1",
                "--format",
                "RAW",
                "--checksum",
                hashlib.sha256(data).hexdigest(),
                "--json",
            )
        ).json()["result"]["template"]["id"]
    )
    ok(cli("template", "deploy", "--template", template_id, "--zone", "zone-1", "--json"))
    return template_id


def held(cli: Cli) -> list[str]:
    items = ok(cli("hosts", "--json")).json()["result"]["items"]
    return [t["template_id"] for h in items for t in h["templates"]]


def pool(data_dir: Path) -> list[str]:
    return sorted(p.name for p in (data_dir / "host_agent" / "pools" / HOST).iterdir())


def test_evict_naming_nothing_exits_2_before_sending(cli: Cli) -> None:
    # No service runs and no exchange exists: reaching the broker would exit 4, not 2.
    result = cli("template", "evict")
    assert result.code == 2, result
    assert "--template, --host or --zone" in result.stderr


def test_hosts_templates_shows_the_copy_and_evict_removes_it(
    agent: ServiceProcess, cli: Cli, nginx: Nginx, data_dir: Path
) -> None:
    data = os.urandom(2**20)
    template_id = deployed(cli, nginx, data)
    wait_until(lambda: held(cli) == [template_id], timeout=10, what="the copy in a heartbeat")

    table = ok(cli("hosts", "--templates", env=WIDE)).stdout
    [row] = [line for line in table.splitlines() if template_id in line]
    digest = hashlib.sha256(data).hexdigest()
    for part in (HOST, f"pool-{HOST}", "1.0 MiB", " s ago", f"{{SHA-256}}{digest[:12]}..."):
        assert part in row, row

    evicted = ok(cli("template", "evict", "--template", template_id, "--json")).json()
    assert evicted["result"] == {"hosts": [HOST], "copies": 1}
    assert evicted["no_answer"] == []
    [answer] = evicted["answers"]
    assert [(c["template_id"], c["size"], c["reason"]) for c in answer["removed"]] == [
        (template_id, len(data), "REQUESTED")
    ]
    assert answer["freed_bytes"] == len(data)
    assert pool(data_dir) == []
    wait_until(lambda: held(cli) == [], timeout=10, what="no copy in a heartbeat")

    # Nothing left to remove: the host still answers, with nothing.
    again = ok(cli("template", "evict", "--host", HOST, env=WIDE)).stdout
    assert f"asked 1 host, holding 0 copies by their last heartbeats: {HOST}" in again
    [row] = [line for line in again.splitlines() if f"pool-{HOST}" in line]
    assert "0 B" in row


def test_evict_exits_3_naming_a_host_that_does_not_answer(agent: ServiceProcess, cli: Cli) -> None:
    wait_until(lambda: ok(cli("hosts", "--json")).json()["result"]["items"], timeout=10)
    agent.kill(signal.SIGSTOP)
    try:
        result = cli("template", "evict", "--host", HOST, "--timeout", "2")
    finally:
        agent.kill(signal.SIGCONT)
    assert result.code == 3, result
    assert "TIMEOUT" in result.message
    assert f"no answer within 2 s from {HOST}" in result.message
