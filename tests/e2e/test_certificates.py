"""Certificates end to end: services and two agents as processes, nginx with its own CA, the CLI."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from directdl_testing import keytool
from directdl_testing.certs import make_self_signed
from directdl_testing.nginx import Nginx

pytestmark = pytest.mark.e2e

BEAT = "0.5"


@pytest.fixture
def nginx() -> Iterator[Nginx]:
    with Nginx() as server:
        yield server


@pytest.fixture
def services(start_service: Callable[..., Any]) -> None:
    start_service("registration", extra_env={"REGISTRATION_WATCHDOG_INTERVAL": BEAT})
    start_service("certificate", env_prefix="CERTIFICATE")
    for host_id in ("host-1", "host-2"):
        start_service(
            "host_agent",
            env_prefix="HOST_AGENT",
            extra_env={
                "HOST_AGENT_HOST_ID": host_id,
                "HOST_AGENT_POOL_ID": f"pool-{host_id}",
                "HOST_AGENT_HEARTBEAT_INTERVAL": BEAT,
            },
        )


def aliases(data_dir: Path, host_id: str) -> list[str]:
    return keytool.trusted_aliases(data_dir / "host_agent" / "truststores" / f"{host_id}.p12")


def template(cli: Any, nginx: Nginx, tmp_path: Path, name: str) -> str:
    subprocess.run(
        ["qemu-img", "create", "-f", "qcow2", str(tmp_path / name), "64M"],
        check=True,
        capture_output=True,
    )
    nginx.add_file(name, (tmp_path / name).read_bytes())
    result = cli(
        "template",
        "register",
        "--name",
        name,
        "--url",
        f"{nginx.https_url}/{name}",
        "--zone",
        "zone-1",
        "--format",
        "QCOW2",
        "--json",
    )
    assert result.code == 0, result
    return str(result.json()["result"]["template"]["id"])


def deploy(cli: Any, template_id: str, host_id: str) -> Any:
    return cli(
        "template",
        "deploy",
        "--template",
        template_id,
        "--zone",
        "zone-1",
        "--host",
        host_id,
        "--json",
    )


def test_upload_then_revoke_through_the_cli(
    services: None, cli: Any, nginx: Nginx, data_dir: Path, tmp_path: Path
) -> None:
    first, second, third = (
        template(cli, nginx, tmp_path, f"{n}.qcow2") for n in ("one", "two", "three")
    )

    refused = deploy(cli, first, "host-1")
    assert refused.code == 1 and "TLS" in refused.stdout

    uploaded = cli(
        "cert",
        "upload",
        "--name",
        "repo-ca",
        "--zone",
        "zone-1",
        "--file",
        str(nginx.cert_pem_path),
        "--json",
    )
    assert uploaded.code == 0, uploaded
    assert [h["state"] for h in uploaded.json()["result"]["hosts"]] == ["UPLOADED", "UPLOADED"]
    assert aliases(data_dir, "host-1") == aliases(data_dir, "host-2") == ["repo-ca"]

    assert deploy(cli, first, "host-1").code == 0
    assert deploy(cli, second, "host-2").code == 0

    revoked = cli("cert", "revoke", "--name", "repo-ca", "--zone", "zone-1", "--json")
    assert revoked.code == 0, revoked
    assert [h["state"] for h in revoked.json()["result"]["hosts"]] == ["REVOKED", "REVOKED"]
    assert aliases(data_dir, "host-1") == aliases(data_dir, "host-2") == []
    assert deploy(cli, third, "host-2").code == 1

    table = cli("cert", "list", "--hosts")
    assert table.code == 0 and "repo-ca" in table.stdout and "REVOKED" in table.stdout


def write(tmp_path: Path, name: str, text: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(text)
    return str(path)


def test_bad_certificates_are_refused_with_their_code_and_nothing_is_stored(
    services: None, cli: Any, tmp_path: Path, data_dir: Path
) -> None:
    pem, key = make_self_signed("repo.example", ["DNS:repo.example"])
    now = datetime.now(UTC)
    expired, _ = make_self_signed(
        "old.example",
        ["DNS:old.example"],
        not_before=now - timedelta(days=10),
        not_after=now - timedelta(days=1),
    )
    cases = {
        "with-key.pem": (pem + key, "INVALID_MESSAGE", "private key"),
        "expired.pem": (expired, "INVALID_MESSAGE", "expired"),
        "garbage.pem": (b"hello", "INVALID_MESSAGE", "certificate"),
        "two.pem": (pem + pem, "INVALID_MESSAGE", "2 certificates"),
    }
    for name, (text, code, words) in cases.items():
        result = cli(
            "cert",
            "upload",
            "--name",
            "repo",
            "--zone",
            "zone-1",
            "--file",
            write(tmp_path, name, text),
        )
        assert result.code == 1, (name, result)
        assert code in result.stderr and words in result.stderr, (name, result.stderr)
    bad_alias = cli(
        "cert",
        "upload",
        "--name",
        "cloudca-x",
        "--zone",
        "zone-1",
        "--file",
        write(tmp_path, "ok.pem", pem),
    )
    unknown_zone = cli(
        "cert", "upload", "--name", "repo", "--zone", "zone-9", "--file", str(tmp_path / "ok.pem")
    )
    vmware = cli(
        "cert",
        "upload",
        "--name",
        "repo",
        "--zone",
        "zone-1",
        "--hypervisor",
        "VMware",
        "--file",
        str(tmp_path / "ok.pem"),
    )
    assert bad_alias.code == 1 and "cloudca" in bad_alias.stderr
    assert (
        unknown_zone.code == 1
        and "NOT_FOUND" in unknown_zone.stderr
        and "zone-9" in unknown_zone.stderr
    )
    assert vmware.code == 1 and "UNSUPPORTED" in vmware.stderr
    assert cli("cert", "list", "--json").json()["result"]["items"] == []
    assert aliases(data_dir, "host-1") == []
