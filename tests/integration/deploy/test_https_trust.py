"""HTTPS deploys trust what operators upload: fail untrusted, work once uploaded, fail revoked."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from directdl.bus.client import BusClient
from directdl.contracts import certificate as cert
from directdl.contracts import deploy
from directdl.contracts import template as tpl
from directdl.contracts.reply import Reply
from directdl_testing import keytool
from directdl_testing.certs import make_self_signed
from directdl_testing.nginx import Nginx

pytestmark = pytest.mark.integration


def qcow2(path: Path) -> bytes:
    subprocess.run(
        ["qemu-img", "create", "-f", "qcow2", str(path), "64M"], check=True, capture_output=True
    )
    return path.read_bytes()


def register(client: BusClient, url: str) -> str:
    reply = client.call(
        tpl.RegisterTemplate(
            name=url.rsplit("/", 1)[-1], url=url, zone_id="zone-1", hypervisor="KVM", format="QCOW2"
        )
    )
    assert reply.result is not None, reply.error
    return str(reply.result["template"]["id"])


def deploy_to(client: BusClient, template_id: str, host_id: str) -> Reply:
    return client.call(
        deploy.DeployTemplate(template_id=template_id, zone_id="zone-1", host_id=host_id),
        timeout=60,
    )


def hosts_outcome(reply: Reply) -> list[tuple[str, str]]:
    assert reply.result is not None, reply.error
    return [(h["host_id"], h["state"]) for h in reply.result["hosts"]]


@pytest.fixture
def wrong_name_nginx() -> Iterator[Nginx]:
    pem, key = make_self_signed("wrong.example", ["DNS:wrong.example"])
    with Nginx(cert_pem=pem, key_pem=key) as server:
        yield server


def test_upload_makes_https_deploys_work_on_both_hosts_and_revoke_undoes_it(
    stack: Any, nginx: Nginx, client: BusClient, tmp_path: Path
) -> None:
    for name in ("a.qcow2", "b.qcow2", "c.qcow2"):
        nginx.add_file(name, qcow2(tmp_path / name))
    a, b, c = (
        register(client, f"{nginx.https_url}/{n}") for n in ("a.qcow2", "b.qcow2", "c.qcow2")
    )
    pem = nginx.cert_pem_path.read_text()

    untrusted = deploy_to(client, a, "host-1")
    assert untrusted.error is not None
    assert untrusted.error.details["attempts"][0]["error_code"] == "TLS"
    assert "certificate verify failed" in untrusted.error.details["attempts"][0]["message"]

    uploaded = client.call(
        cert.UploadCertificate(name="Repo-CA", zone_id="zone-1", hypervisor="KVM", certificate=pem)
    )
    assert hosts_outcome(uploaded) == [("host-1", "UPLOADED"), ("host-2", "UPLOADED")]
    for store in stack.truststores.values():
        assert keytool.entries(store) == {"repo-ca": "trustedCertEntry"}

    for host_id, template_id in (("host-1", a), ("host-2", b)):
        done = deploy_to(client, template_id, host_id)
        assert done.ok, done.error

    certificate_id = uploaded.result["certificate"]["id"]  # type: ignore[index]
    revoked = client.call(cert.RevokeCertificate(id=certificate_id, zone_id="zone-1"))
    assert hosts_outcome(revoked) == [("host-1", "REVOKED"), ("host-2", "REVOKED")]
    for store in stack.truststores.values():
        assert keytool.entries(store) == {}
    again = deploy_to(client, c, "host-2")
    assert again.error is not None
    assert again.error.details["attempts"][0]["error_code"] == "TLS"

    listed = client.call(cert.ListCertificates(zone_id="zone-1", list_hosts=True))
    assert listed.result is not None
    [entry] = listed.result["items"]
    assert entry["certificate"]["revoked"] is True
    assert [(h["host_id"], h["state"]) for h in entry["hosts"]] == [
        ("host-1", "REVOKED"),
        ("host-2", "REVOKED"),
    ]


def test_a_trusted_certificate_for_another_host_name_is_still_refused(
    stack: Any, wrong_name_nginx: Nginx, client: BusClient, tmp_path: Path
) -> None:
    wrong_name_nginx.add_file("w.qcow2", qcow2(tmp_path / "w.qcow2"))
    template_id = register(client, f"{wrong_name_nginx.https_url}/w.qcow2")
    pem = wrong_name_nginx.cert_pem_path.read_text()
    uploaded = client.call(
        cert.UploadCertificate(
            name="wrong", zone_id="zone-1", hypervisor="KVM", certificate=pem, host_id="host-1"
        )
    )
    assert hosts_outcome(uploaded) == [("host-1", "UPLOADED")]

    reply = deploy_to(client, template_id, "host-1")

    assert reply.error is not None
    attempt = reply.error.details["attempts"][0]
    assert attempt["error_code"] == "TLS"
    assert "mismatch" in attempt["message"] or "doesn't match" in attempt["message"]
