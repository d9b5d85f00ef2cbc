"""template.prepare on a zone of two agents: the template lands on both, one full GET each;
prepared again, both are CACHED and nothing is fetched."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from directdl_testing.nginx import Nginx
from directdl_testing.recorder import MessageRecorder
from directdl_testing.waiting import wait_until
from tests.e2e.test_pool_lifecycle import FAST_BEAT, files_in, pool, register, start_agent

pytestmark = pytest.mark.e2e

HOSTS = ("host-1", "host-2")


@pytest.fixture
def nginx() -> Iterator[Nginx]:
    with Nginx() as server:
        yield server


def up_hosts(cli: Any) -> list[str]:
    result = cli("hosts", "--zone", "zone-1", "--json")
    assert result.code == 0, result
    return sorted(h["host_id"] for h in result.json()["result"]["items"] if h["state"] == "Up")


def prepared(cli: Any, template_id: str) -> dict[str, str]:
    result = cli(
        "template", "prepare", template_id, "--zone", "zone-1", "--json", "--timeout", "60"
    )
    assert result.code == 0, result
    return {h["host_id"]: h["state"] for h in result.json()["result"]["hosts"]}


def test_a_zone_prepared_holds_the_template_on_every_host_fetched_once_each(
    start_service: Callable[..., Any],
    cli: Any,
    nginx: Nginx,
    recorder: MessageRecorder,
    data_dir: Path,
) -> None:
    start_service("registration", extra_env={"REGISTRATION_WATCHDOG_INTERVAL": FAST_BEAT})
    for host_id in HOSTS:
        start_agent(start_service, host_id, FAST_BEAT)
    data = os.urandom(4 * 2**20)
    template_id = register(cli, nginx, "prepared.raw", data, slow=False)
    wait_until(lambda: up_hosts(cli) == list(HOSTS), timeout=15, what="both hosts Up")

    assert prepared(cli, template_id) == dict.fromkeys(HOSTS, "SUCCEEDED")
    for host_id in HOSTS:
        assert files_in(pool(data_dir, host_id)) == [template_id]
        assert (pool(data_dir, host_id) / template_id).read_bytes() == data
    gets = [e for e in nginx.access_log_lines() if e.uri.endswith("/prepared.raw")]
    assert [(e.method, e.status, e.body_bytes_sent) for e in gets if e.method == "GET"] == [
        ("GET", 200, len(data)),
        ("GET", 200, len(data)),
    ], gets
    progress = recorder.expect("template.prepare.progress", timeout=5, count=4)
    assert sorted((m.body["host_id"], m.body["state"]) for m in progress) == [
        ("host-1", "RUNNING"),
        ("host-1", "SUCCEEDED"),
        ("host-2", "RUNNING"),
        ("host-2", "SUCCEEDED"),
    ]
    logged = len(nginx.access_log_lines())

    assert prepared(cli, template_id) == dict.fromkeys(HOSTS, "CACHED")
    assert len(nginx.access_log_lines()) == logged, "a verified copy is not fetched again"
