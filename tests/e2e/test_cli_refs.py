"""The CLI names a template, certificate or deploy by name, id or unique id prefix, against
the services as processes; and `hosts --state`."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from directdl.bus.client import BusClient
from directdl.contracts import deploy
from directdl_testing.certs import make_self_signed
from directdl_testing.nginx import Nginx

if TYPE_CHECKING:
    from directdl_testing.processes import ServiceProcess
    from tests.e2e.conftest import Cli, CliResult

pytestmark = pytest.mark.e2e

BEAT = "0.5"
DATA = b"direct download " * 64


def ok(result: CliResult) -> Any:
    assert result.code == 0, f"exit {result.code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    return result.json()["result"]


def refused(result: CliResult, code: str) -> str:
    assert result.code == 1, f"exit {result.code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert f"error {code}:" in result.message, result.message
    return result.message


@pytest.fixture
def nginx() -> Iterator[Nginx]:
    with Nginx() as server:
        server.add_file("t.raw", DATA)
        yield server


@pytest.fixture
def agents(start_service: Callable[..., ServiceProcess]) -> dict[str, ServiceProcess]:
    """registration and certificate, and one host agent in each of zone-1 and zone-2."""
    start_service("registration", extra_env={"REGISTRATION_WATCHDOG_INTERVAL": BEAT})
    start_service("certificate", env_prefix="CERTIFICATE")
    return {
        zone: start_service(
            "host_agent",
            env_prefix="HOST_AGENT",
            extra_env={
                "HOST_AGENT_HOST_ID": host,
                "HOST_AGENT_ZONE_ID": zone,
                "HOST_AGENT_POOL_ID": f"pool-{host}",
                "HOST_AGENT_HEARTBEAT_INTERVAL": BEAT,
            },
        )
        for host, zone in (("host-1", "zone-1"), ("host-2", "zone-2"))
    }


def register(cli: Cli, nginx: Nginx, name: str, zone: str) -> str:
    registered = cli(
        "template", "register", "--name", name, "--zone", zone, "--format", "RAW",
        "--url", f"{nginx.http_url}/t.raw", "--checksum", hashlib.sha256(DATA).hexdigest(),
        "--json",
    )  # fmt: skip
    return str(ok(registered)["template"]["id"])


def test_templates_are_named_by_name_id_or_prefix(
    agents: dict[str, ServiceProcess], cli: Cli, nginx: Nginx
) -> None:
    solo = register(cli, nginx, "solo", "zone-1")
    twin_1 = register(cli, nginx, "twin", "zone-1")
    twin_2 = register(cli, nginx, "twin", "zone-2")

    assert ok(cli("template", "show", "solo", "--json"))["template"]["id"] == solo
    assert ok(cli("template", "show", solo, "--json"))["template"]["name"] == "solo"
    assert ok(cli("template", "show", solo[:8], "--json"))["template"]["id"] == solo
    updated = ok(cli("template", "update", solo[:8], "--type", "SYSTEM", "--json"))
    assert (updated["template"]["id"], updated["template"]["template_type"]) == (solo, "SYSTEM")

    ambiguous = refused(cli("template", "show", "twin"), "CONFLICT")
    assert "template name 'twin' is ambiguous: 2 match (give --zone, or the id)" in ambiguous
    assert twin_1 in ambiguous and twin_2 in ambiguous
    shown = ok(cli("template", "show", "twin", "--zone", "zone-2", "--json"))
    assert shown["template"]["id"] == twin_2

    missing = refused(cli("template", "show", "nothing"), "NOT_FOUND")
    assert "no template has the name, id or id prefix 'nothing'" in missing
    short = refused(cli("template", "delete", solo[:3]), "NOT_FOUND")
    assert "at least 4 hex digits" in short

    deleted = ok(cli("template", "delete", "twin", "--zone", "zone-1", "--json"))
    assert deleted["template"]["id"] == twin_1
    assert ok(cli("template", "show", "twin", "--json"))["template"]["id"] == twin_2
    assert ok(cli("template", "delete", solo, "--json"))["template"]["id"] == solo


def test_deploys_are_named_by_id_or_unique_prefix(
    agents: dict[str, ServiceProcess], cli: Cli, nginx: Nginx, client: BusClient
) -> None:
    template_id = register(cli, nginx, "deployed", "zone-1")
    # Deploy ids a client chooses, sharing their first six hex digits: an ambiguous prefix.
    shared = uuid.uuid4().hex[:6]
    chosen = [f"{shared}{n:02x}-0000-4000-8000-{uuid.uuid4().hex[:12]}" for n in (1, 2)]
    for deploy_id in chosen:
        command = deploy.DeployTemplate(
            template_id=template_id, zone_id="zone-1", deploy_id=deploy_id
        )
        client.publish(command.routing_key, command.model_dump_json(exclude_none=True).encode())

    first = until_ended(cli, chosen[0][:8])
    assert (first["deploy_id"], first["state"]) == (chosen[0], "SUCCEEDED")
    followed = ok(cli("deploy", "follow", chosen[1][:8], "--json"))
    assert followed["deploy_id"] == chosen[1]

    ambiguous = refused(cli("deploy", "show", shared), "CONFLICT")
    assert f"deploy id prefix '{shared}' is ambiguous: 2 match (give more of the id)" in ambiguous
    assert all(deploy_id in ambiguous for deploy_id in chosen)
    listed = ok(cli("deploy", "list", "--template", "deployed", "--zone", "zone-1", "--json"))
    assert sorted(d["deploy_id"] for d in listed["items"]) == sorted(chosen)


def until_ended(cli: Cli, ref: str, within: float = 30.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        shown = cli("deploy", "show", ref, "--json")
        if shown.code == 0 and shown.json()["result"]["state"] != "RUNNING":
            return shown.json()["result"]
        assert time.monotonic() < deadline, shown
        time.sleep(0.3)


def test_certificates_are_named_by_alias_in_a_zone_or_by_prefix(
    agents: dict[str, ServiceProcess], cli: Cli, tmp_path: Path
) -> None:
    pem = tmp_path / "repo-ca.pem"
    pem.write_bytes(make_self_signed("repo.example", ["DNS:repo.example"])[0])
    ids = {
        zone: ok(
            cli("cert", "upload", "--name", "repo-ca", "--zone", zone, "--file", str(pem), "--json")
        )["certificate"]["id"]
        for zone in ("zone-1", "zone-2")
    }

    ambiguous = refused(cli("cert", "delete", "--id", "repo-ca"), "CONFLICT")
    assert "certificate name 'repo-ca' is ambiguous: 2 match" in ambiguous
    shown = ok(cli("cert", "show", "--id", "repo-ca", "--zone", "zone-2", "--json"))
    [entry] = shown["items"]
    assert entry["certificate"]["id"] == ids["zone-2"]
    assert [(h["host_id"], h["state"]) for h in entry["hosts"]] == [("host-2", "UPLOADED")]
    refused(cli("cert", "show", "--id", str(uuid.uuid4())), "NOT_FOUND")
    revoked = ok(cli("cert", "revoke", "--id", ids["zone-1"][:8], "--zone", "zone-1", "--json"))
    assert (revoked["certificate"]["id"], revoked["certificate"]["revoked"]) == (
        ids["zone-1"],
        True,
    )
    deleted = ok(cli("cert", "delete", "--id", "repo-ca", "--zone", "zone-2", "--json"))
    assert deleted["certificate"]["id"] == ids["zone-2"]
    refused(cli("cert", "provision", "--id", ids["zone-2"][:8], "--host", "host-2"), "NOT_FOUND")


def test_hosts_are_listed_by_state(agents: dict[str, ServiceProcess], cli: Cli) -> None:
    def hosts(*args: str) -> list[tuple[str, str]]:
        return [(h["host_id"], h["state"]) for h in ok(cli("hosts", *args, "--json"))["items"]]

    assert hosts("--state", "Up") == [("host-1", "Up"), ("host-2", "Up")]
    assert hosts("--state", "up", "--zone", "zone-2") == [("host-2", "Up")]
    agents["zone-2"].stop()
    deadline = time.monotonic() + 15
    while hosts("--state", "Down") != [("host-2", "Down")]:
        assert time.monotonic() < deadline, hosts()
        time.sleep(0.3)
    assert hosts("--state", "Up") == [("host-1", "Up")]
    assert hosts("--state", "Down", "--zone", "zone-1") == []
