"""The certificate service over a real RabbitMQ and database: fan-out, answers, late hosts."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from certificate.uow import CertificateUnitOfWork
from directdl.bus.client import DIRECT_REPLY_TO, BusClient
from directdl.contracts import certificate as msg
from directdl.contracts.reply import Reply
from directdl.contracts.settings import UpdateSetting
from directdl.runtime.service import Service
from directdl_testing.certs import make_self_signed
from directdl_testing.recorder import MessageRecorder

pytestmark = pytest.mark.integration

PEM = make_self_signed("repo.example", ["DNS:repo.example"])[0].decode()


def send(client: BusClient, command: msg.UploadCertificate) -> str:
    """Publish a command whose reply comes later; returns the correlation id to wait on."""
    correlation_id = str(uuid.uuid4())
    body = command.model_dump_json(exclude_none=True).encode()
    client.publish(
        command.routing_key, body, correlation_id=correlation_id, reply_to=DIRECT_REPLY_TO
    )
    return correlation_id


def installed(host: BusClient, host_id: str, install: dict[str, Any]) -> None:
    report = msg.CertificateInstalled(
        operation_id=install["operation_id"],
        certificate_id=install["certificate_id"],
        host_id=host_id,
        alias=install["alias"],
        fingerprint_sha256="AB",
        outcome="installed",
    )
    host.publish(report.routing_key, report.model_dump_json().encode())


def outcomes(reply: Reply) -> list[tuple[str, str, str | None]]:
    assert reply.result is not None, reply.error
    return [(h["host_id"], h["state"], h.get("reason")) for h in reply.result["hosts"]]


def upload_command() -> msg.UploadCertificate:
    return msg.UploadCertificate(name="repo", zone_id="zone-1", hypervisor="KVM", certificate=PEM)


def test_two_hosts_answering_at_once_both_count_and_the_upload_is_answered_once(
    certificate: Service[CertificateUnitOfWork],
    hosts: dict[str, BusClient],
    client: BusClient,
    recorder: MessageRecorder,
) -> None:
    correlation_id = send(client, upload_command())
    asked = {
        m.routing_key.split(".")[1]: m.body
        for h in hosts
        for m in recorder.expect(f"host.{h}.cert.install")
    }
    for host_id, host in hosts.items():  # both before either is handled
        installed(host, host_id, asked[host_id])

    reply = client.wait_reply(correlation_id, timeout=10)

    assert outcomes(reply) == [("host-1", "UPLOADED", None), ("host-2", "UPLOADED", None)]
    [event] = recorder.expect("cert.uploaded")
    assert event.body["certificate"]["id"] == asked["host-1"]["certificate_id"]
    assert event.properties.user_id == "certificate"


def test_a_host_that_never_answers_is_failed_by_the_timer(
    certificate: Service[CertificateUnitOfWork],
    hosts: dict[str, BusClient],
    client: BusClient,
    recorder: MessageRecorder,
) -> None:
    timeout = client.call(UpdateSetting(name="directdl.certificate.host.timeout", value=1))
    assert timeout.ok, timeout.error
    correlation_id = send(client, upload_command())
    [install] = recorder.expect("host.host-1.cert.install")
    installed(hosts["host-1"], "host-1", install.body)

    reply = client.wait_reply(correlation_id, timeout=10)

    assert outcomes(reply) == [
        ("host-1", "UPLOADED", None),
        ("host-2", "FAILED", "no answer within 1 s"),
    ]
    [ended] = recorder.expect("cert.uploaded")
    assert [h["state"] for h in ended.body["hosts"]] == ["UPLOADED", "FAILED"]
    listed = client.call(msg.ListCertificates(list_hosts=True))
    assert listed.result is not None
    [entry] = listed.result["items"]
    assert [(h["host_id"], h["state"]) for h in entry["hosts"]] == [
        ("host-1", "UPLOADED"),
        ("host-2", "FAILED"),
    ]
