"""The registration-time URL check against a real nginx: typos fail at once, sizes are learnt."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from directdl.bus.client import BusClient
from directdl.contracts import template as tpl
from directdl.contracts.reply import Reply
from directdl_testing.metalinks import write_meta4
from directdl_testing.nginx import Nginx

pytestmark = pytest.mark.integration


def register(client: BusClient, url: str, **extra: Any) -> Reply:
    command = tpl.RegisterTemplate(
        name=url.rsplit("/", 1)[-1] or "x",
        url=url,
        zone_id="zone-1",
        hypervisor="KVM",
        format="RAW",
        **extra,
    )
    return client.call(command)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_size_is_learnt_and_sent_with_the_download(
    stack: Any, nginx: Nginx, client: BusClient
) -> None:
    nginx.add_file("disk.raw", b"x" * 12345)
    reply = register(client, f"{nginx.http_url}/disk.raw")
    assert reply.result is not None and reply.result["template"]["size"] == 12345


@pytest.mark.parametrize("path", ["/missing.raw", "/redirect-to-missing.raw"])
def test_a_url_that_does_not_answer_is_refused_naming_it(
    stack: Any, nginx: Nginx, client: BusClient, path: str
) -> None:
    reply = register(client, f"{nginx.http_url}{path}")
    assert reply.error is not None and reply.error.code == "URL_UNREACHABLE"
    assert path in reply.error.message and "404" in reply.error.message


def test_a_refused_connection_is_refused_and_opting_out_registers_anyway(
    stack: Any, client: BusClient
) -> None:
    url = f"http://127.0.0.1:{closed_port()}/disk.raw"
    refused = register(client, url)
    registered = register(client, url, validate_url=False)
    assert refused.error is not None and refused.error.code == "URL_UNREACHABLE"
    assert "set validate_url false (CLI: --no-validate-url)" in refused.error.message
    assert registered.ok and registered.result is not None
    assert registered.result["template"]["size"] is None


def test_tls_is_left_to_the_hosts_which_may_trust_uploaded_certificates(
    stack: Any, nginx: Nginx, client: BusClient
) -> None:
    nginx.add_file("tls.raw", b"y" * 10)
    reply = register(client, f"{nginx.https_url}/tls.raw")
    assert reply.ok and reply.result is not None and reply.result["template"]["size"] is None


def test_a_metalink_gives_its_file_size_and_a_broken_one_is_refused(
    stack: Any, nginx: Nginx, client: BusClient
) -> None:
    document = write_meta4("d.raw", 4242, {"SHA-256": "ab" * 32}, [(f"{nginx.http_url}/d.raw", 1)])
    nginx.add_file("d.meta4", document)
    nginx.add_file("broken.meta4", b"<metalink>not closed")

    good = register(client, f"{nginx.http_url}/d.meta4")
    broken = register(client, f"{nginx.http_url}/broken.meta4")

    assert good.result is not None and good.result["template"]["size"] == 4242
    assert good.result["template"]["protocol"] == "metalink"
    assert broken.error is not None and broken.error.code == "INVALID_MESSAGE"
    assert "broken.meta4" in broken.error.message
