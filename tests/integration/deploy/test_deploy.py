"""The deploy path for real: registration and two agents, templates served by nginx."""

from __future__ import annotations

import gzip
import hashlib
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from directdl.bus.client import BusClient
from directdl.contracts import deploy
from directdl.contracts import template as tpl
from directdl.contracts.reply import Reply
from directdl_testing.nginx import Nginx
from directdl_testing.recorder import MessageRecorder

pytestmark = pytest.mark.integration


def qcow2(path: Path, *extra: str) -> bytes:
    subprocess.run(
        ["qemu-img", "create", "-f", "qcow2", *extra, str(path), "64M"],
        check=True,
        capture_output=True,
    )
    return path.read_bytes()


def register(
    client: BusClient, url: str, fmt: str = "QCOW2", checksum: str | None = None, name: str = "t"
) -> str:
    reply = client.call(
        tpl.RegisterTemplate(
            name=name, url=url, zone_id="zone-1", hypervisor="KVM", format=fmt, checksum=checksum
        )
    )
    assert reply.ok, reply.error
    assert reply.result is not None
    return str(reply.result["template"]["id"])


def deploy_and_wait(client: BusClient, template_id: str, host_id: str | None = None) -> Reply:
    return client.call(
        deploy.DeployTemplate(template_id=template_id, zone_id="zone-1", host_id=host_id),
        timeout=60,
    )


def sha256(data: bytes) -> str:
    return "{SHA-256}" + hashlib.sha256(data).hexdigest()


def pool_files(stack: Any) -> list[str]:
    return sorted(f"{h}/{p.name}" for h, pool in stack.pools.items() for p in pool.iterdir())


def full_gets(nginx: Nginx, name: str) -> list[Any]:
    return [
        e
        for e in nginx.access_log_lines()
        if e.uri.endswith(name) and e.method == "GET" and e.status == 200
    ]


def test_a_template_lands_verified_then_a_second_deploy_is_cached(
    stack: Any, nginx: Nginx, client: BusClient, tmp_path: Path
) -> None:
    data = qcow2(tmp_path / "centos.qcow2")
    nginx.add_file("centos.qcow2", data)
    template_id = register(client, f"{nginx.http_url}/centos.qcow2", checksum=sha256(data))

    first = deploy_and_wait(client, template_id)
    second = deploy_and_wait(client, template_id)

    assert first.ok, first.error
    assert first.result is not None and second.result is not None
    host_id = first.result["host_id"]
    assert Path(first.result["path"]) == stack.pools[host_id] / template_id
    assert Path(first.result["path"]).read_bytes() == data
    assert first.result["digest"] == sha256(data)
    assert (first.result["cached"], second.result["cached"]) == (False, True)
    assert second.result["host_id"] == host_id, "the host holding the template is preferred"
    assert len(full_gets(nginx, "centos.qcow2")) == 1
    assert pool_files(stack) == [f"{host_id}/{template_id}"]


def test_two_concurrent_deploys_to_one_pool_download_once(
    stack: Any, nginx: Nginx, client: BusClient
) -> None:
    data = os.urandom(6 * 2**20)
    nginx.add_file("disk.raw", data)
    template_id = register(
        client, f"{nginx.http_url}/slow/disk.raw", fmt="RAW", checksum=sha256(data)
    )

    command = deploy.DeployTemplate(template_id=template_id, zone_id="zone-1", host_id="host-1")
    body = command.model_dump_json().encode()
    for correlation_id in ("a", "b"):
        client.publish(
            "template.deploy", body, reply_to="amq.rabbitmq.reply-to", correlation_id=correlation_id
        )
    replies = [client.wait_reply(c, timeout=60) for c in ("a", "b")]

    assert all(r.ok for r in replies), [r.error for r in replies]
    results = [r.result for r in replies if r.result is not None]
    assert {r["path"] for r in results} == {str(stack.pools["host-1"] / template_id)}
    assert {r["digest"] for r in results} == {sha256(data)}
    assert len(full_gets(nginx, "disk.raw")) == 1


def test_progress_is_reported_while_a_download_runs(
    stack: Any, nginx: Nginx, client: BusClient, recorder: MessageRecorder
) -> None:
    data = os.urandom(5 * 2**20)
    nginx.add_file("slow.raw", data)
    template_id = register(client, f"{nginx.http_url}/slow/slow.raw", fmt="RAW")

    assert deploy_and_wait(client, template_id).ok
    progress = recorder.expect("template.download.progress", timeout=5)
    assert all(p.body["template_id"] == template_id for p in progress)
    assert progress[-1].body["total"] == len(data)
    assert 0 < progress[-1].body["bytes_done"] <= len(data)


def test_a_wrong_checksum_fails_without_trying_another_host_and_leaves_nothing(
    stack: Any, nginx: Nginx, client: BusClient
) -> None:
    data = qcow2(Path(nginx.root) / "x.qcow2")
    template_id = register(client, f"{nginx.http_url}/x.qcow2", checksum="{SHA-256}" + "0" * 64)

    reply = deploy_and_wait(client, template_id)

    assert reply.error is not None and reply.error.code == "DOWNLOAD_FAILED"
    [attempt] = reply.error.details["attempts"]
    assert attempt["error_code"] == "CHECKSUM_MISMATCH"
    assert hashlib.sha256(data).hexdigest() in attempt["message"]
    assert "0" * 64 in attempt["message"]
    assert len(full_gets(nginx, "x.qcow2")) == 2, "one re-download, then the verdict"
    assert pool_files(stack) == []


def test_a_qcow2_with_a_backing_file_is_refused_and_not_kept(
    stack: Any, nginx: Nginx, client: BusClient, tmp_path: Path
) -> None:
    qcow2(tmp_path / "base.qcow2")
    evil = qcow2(tmp_path / "evil.qcow2", "-b", str(tmp_path / "base.qcow2"), "-F", "qcow2")
    nginx.add_file("evil.qcow2", evil)
    template_id = register(client, f"{nginx.http_url}/evil.qcow2")

    reply = deploy_and_wait(client, template_id)

    assert reply.error is not None
    [attempt] = reply.error.details["attempts"]
    assert attempt["error_code"] == "UNSAFE_IMAGE"
    assert "backing file" in attempt["message"]
    assert pool_files(stack) == []


def test_an_untrusted_https_server_fails_on_every_host(
    stack: Any, nginx: Nginx, client: BusClient, tmp_path: Path
) -> None:
    nginx.add_file("tls.qcow2", qcow2(tmp_path / "tls.qcow2"))
    template_id = register(client, f"{nginx.https_url}/tls.qcow2")

    reply = deploy_and_wait(client, template_id)

    assert reply.error is not None
    attempts = reply.error.details["attempts"]
    assert sorted(a["host_id"] for a in attempts) == ["host-1", "host-2"]
    assert {a["error_code"] for a in attempts} == {"TLS"}
    assert "certificate verify failed" in attempts[0]["message"]


def test_a_gzipped_template_is_stored_decompressed_and_checked_against_the_download(
    stack: Any, nginx: Nginx, client: BusClient, tmp_path: Path
) -> None:
    data = qcow2(tmp_path / "z.qcow2")
    packed = gzip.compress(data)
    nginx.add_file("z.qcow2.gz", packed)
    template_id = register(client, f"{nginx.http_url}/z.qcow2.gz", checksum=sha256(packed))

    reply = deploy_and_wait(client, template_id)

    assert reply.ok, reply.error
    assert reply.result is not None
    assert Path(reply.result["path"]).read_bytes() == data
    assert reply.result["digest"] == sha256(packed)
