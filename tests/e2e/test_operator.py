"""What an operator watches: `directdl status` and `directdl events`, against real processes."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from directdl.bus.topology import Topology
from directdl_testing.waiting import wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
def running(start_service: Callable[..., Any]) -> dict[str, Any]:
    return {
        "registration": start_service(
            "registration", extra_env={"REGISTRATION_CHECK_URLS": "false"}
        ),
        "host-agent-host-1": start_service(
            "host_agent",
            env_prefix="HOST_AGENT",
            extra_env={"HOST_AGENT_HOST_ID": "host-1", "HOST_AGENT_HEARTBEAT_INTERVAL": "0.5"},
        ),
    }


def health_urls(services: dict[str, Any]) -> str:
    return ",".join(f"{name}=http://127.0.0.1:{s.health_port}" for name, s in services.items())


def test_status_shows_each_service_ready_and_each_host(running: dict[str, Any], cli: Any) -> None:
    env = {"DIRECTDL_HEALTH_URLS": health_urls(running)}
    wait_until(lambda: cli("status", "--json", env=env).json()["hosts"], timeout=10)

    result = cli("status", "--json", env=env)

    assert result.code == 0, result
    report = result.json()
    assert [(s["service"], s["ready"]) for s in report["services"]] == [
        ("registration", True),
        ("host-agent-host-1", True),
    ]
    assert [(h["host_id"], h["state"]) for h in report["hosts"]] == [("host-1", "Up")]
    table = cli("status", env=env)
    assert table.code == 0 and "registration" in table.stdout and "host-1" in table.stdout


def test_status_exits_1_when_a_service_is_not_ready(running: dict[str, Any], cli: Any) -> None:
    env = {"DIRECTDL_HEALTH_URLS": health_urls(running) + ",missing=http://127.0.0.1:1"}
    result = cli("status", "--json", env=env)
    assert result.code == 1
    assert result.json()["services"][-1] == {
        "service": "missing",
        "ready": False,
        "checks": result.json()["services"][-1]["checks"],
    }
    assert "unreachable" in result.json()["services"][-1]["checks"]


def test_events_tails_the_bus(
    running: dict[str, Any], cli: Any, directdl_script: str, amqp_url: str, topology: Topology
) -> None:
    tail = subprocess.Popen(
        [directdl_script, "events", "*.registered", "--count", "1", "--seconds", "20", "--json"],
        env={"AMQP_URL": amqp_url, "DIRECTDL_EXCHANGE": topology.exchange, "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert tail.stderr is not None
        assert "watching '*.registered'" in tail.stderr.readline()  # bound: nothing is missed
        registered = cli(
            "template",
            "register",
            "--name",
            "watched",
            "--zone",
            "zone-1",
            "--format",
            "RAW",
            "--url",
            "http://images.example/w.raw",
            "--no-validate-url",
        )
        assert registered.code == 0, registered
        output, _ = tail.communicate(timeout=25)
    finally:
        tail.kill()
    [line] = output.splitlines()
    event = json.loads(line)
    assert event["routing_key"] == "template.registered"
    assert event["body"]["template"]["name"] == "watched"
