"""Deploys end to end: registration and two host agents as processes, driven by the CLI."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from directdl.bus.client import BusClient
from directdl.contracts import deploy
from directdl_testing.nginx import Nginx
from directdl_testing.recorder import MessageRecorder

pytestmark = pytest.mark.e2e

BEAT = "0.5"


@pytest.fixture
def nginx() -> Iterator[Nginx]:
    with Nginx(slow_rate="2m") as server:
        yield server


@pytest.fixture
def registration(start_service: Callable[..., Any]) -> Any:
    return start_service("registration", extra_env={"REGISTRATION_WATCHDOG_INTERVAL": BEAT})


@pytest.fixture
def agents(start_service: Callable[..., Any], registration: Any) -> dict[str, Any]:
    return {
        host_id: start_service(
            "host_agent",
            env_prefix="HOST_AGENT",
            extra_env={
                "HOST_AGENT_HOST_ID": host_id,
                "HOST_AGENT_ZONE_ID": "zone-1",
                "HOST_AGENT_POOL_ID": f"pool-{host_id}",
                "HOST_AGENT_HEARTBEAT_INTERVAL": BEAT,
            },
        )
        for host_id in ("host-1", "host-2")
    }


def pool(data_dir: Path, host_id: str) -> Path:
    return data_dir / "host_agent" / "pools" / host_id


def qcow2(path: Path) -> bytes:
    subprocess.run(
        ["qemu-img", "create", "-f", "qcow2", str(path), "64M"], check=True, capture_output=True
    )
    return path.read_bytes()


def register(cli: Any, url: str, fmt: str, checksum: str) -> str:
    result = cli(
        "template",
        "register",
        "--name",
        url.rsplit("/", 1)[-1],
        "--url",
        url,
        "--zone",
        "zone-1",
        "--format",
        fmt,
        "--checksum",
        checksum,
        "--json",
    )
    assert result.code == 0, result
    return str(result.json()["result"]["template"]["id"])


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def metric(port: int, name: str, **labels: str) -> float:
    """The value of one series on a service's /metrics (0 when it has none yet)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in get(port, "/metrics")[1].splitlines():
        if line.startswith(f"{name}{{{wanted}}} ") or (line.startswith(f"{name} ") and not labels):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_every_service_answers_health_readiness_and_metrics(
    agents: dict[str, Any], registration: Any
) -> None:
    for service, checks in [
        (registration, {"broker", "database"}),
        (agents["host-1"], {"broker", "database", "pool", "truststore"}),
    ]:
        assert get(service.health_port, "/healthz") == (200, '{"status": "alive"}')
        status, body = get(service.health_port, "/readyz")
        assert status == 200
        assert set(json.loads(body)["checks"]) == checks
        status, text = get(service.health_port, "/metrics")
        assert status == 200 and "directdl_messages_consumed_total" in text


def test_register_deploy_and_deploy_again_through_the_cli(
    agents: dict[str, Any],
    registration: Any,
    cli: Any,
    nginx: Nginx,
    data_dir: Path,
    tmp_path: Path,
) -> None:
    data = qcow2(tmp_path / "centos.qcow2")
    nginx.add_file("centos.qcow2", data)
    digest = "{SHA-256}" + hashlib.sha256(data).hexdigest()
    template_id = register(cli, f"{nginx.http_url}/centos.qcow2", "QCOW2", digest)

    ended = {"service": "registration", "code": ""}
    deploys_before = metric(
        registration.health_port, "directdl_deploys_total", outcome="succeeded", **ended
    )
    first = cli("template", "deploy", "--template", template_id, "--zone", "zone-1", "--json")
    second = cli("template", "deploy", "--template", template_id, "--zone", "zone-1", "--json")
    hosts = cli("hosts", "--json")

    assert first.code == 0, first
    done = first.json()["result"]
    assert done["digest"] == digest and done["cached"] is False
    assert (pool(data_dir, done["host_id"]) / template_id).read_bytes() == data
    assert second.code == 0 and second.json()["result"]["cached"] is True
    # the counts move: one deploy more, and the bytes on the agent that downloaded
    assert (
        metric(registration.health_port, "directdl_deploys_total", outcome="succeeded", **ended)
        == deploys_before + 1
    )
    cached = metric(registration.health_port, "directdl_deploys_total", outcome="cached", **ended)
    assert cached == 1
    host = agents[done["host_id"]].health_port
    agent = {"service": f"host-agent-{done['host_id']}", "host": done["host_id"]}
    assert metric(host, "directdl_bytes_downloaded_total", **agent) == len(data)
    routing = {"service": "registration", "routing_key": "template.deploy"}
    assert metric(registration.health_port, "directdl_messages_consumed_total", **routing) == 2
    assert [(h["host_id"], h["state"]) for h in hosts.json()["result"]["items"]] == [
        ("host-1", "Up"),
        ("host-2", "Up"),
    ]
    held = {h["host_id"]: h["templates"] for h in hosts.json()["result"]["items"]}
    assert [t["template_id"] for t in held[done["host_id"]]] == [template_id]


def test_a_deploy_whose_first_host_dies_mid_download_succeeds_on_the_second(
    agents: dict[str, Any],
    cli: Any,
    nginx: Nginx,
    client: BusClient,
    recorder: MessageRecorder,
    data_dir: Path,
) -> None:
    data = os.urandom(8 * 2**20)  # four seconds at the slow location's 2 MB/s
    nginx.add_file("big.raw", data)
    template_id = register(
        cli, f"{nginx.http_url}/slow/big.raw", "RAW", hashlib.sha256(data).hexdigest()
    )

    command = deploy.DeployTemplate(template_id=template_id, zone_id="zone-1")
    client.publish(
        "template.deploy",
        command.model_dump_json().encode(),
        reply_to="amq.rabbitmq.reply-to",
        correlation_id="d1",
    )
    first_progress = recorder.expect("template.download.progress", timeout=15)[0]
    first_host = first_progress.body["host_id"]
    agents[first_host].kill(signal.SIGKILL)

    reply = client.wait_reply("d1", timeout=60)

    assert reply.ok, reply.error
    assert reply.result is not None
    other = next(h for h in agents if h != first_host)
    assert reply.result["host_id"] == other
    assert [(a["host_id"], a["state"], a["error_code"]) for a in reply.result["attempts"]] == [
        (first_host, "FAILED", "HOST_DOWN"),
        (other, "SUCCEEDED", None),
    ]
    assert (pool(data_dir, other) / template_id).read_bytes() == data
