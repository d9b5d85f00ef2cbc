"""The destination policy over the bus: registration refuses denied hosts, redirects and
mirrors before connecting to them; the agents get the live networks in every download."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from directdl.bus.client import BusClient
from directdl.contracts import deploy
from directdl.contracts import settings as msg
from directdl.contracts import template as tpl
from directdl.contracts.reply import Reply
from directdl_testing.listeners import CountingListener, ScriptedServer
from directdl_testing.metalinks import write_meta4
from directdl_testing.nginx import Nginx
from directdl_testing.waiting import wait_until

pytestmark = pytest.mark.integration

DENIED = "directdl.download.denied.networks"


def register(client: BusClient, url: str, **extra: Any) -> Reply:
    name = url.rsplit("/", 1)[-1].partition("?")[0]
    command = tpl.RegisterTemplate(
        name=name, url=url, zone_id="zone-1", hypervisor="KVM", format="RAW", **extra
    )
    return client.call(command)


def deny(client: BusClient, networks: str) -> None:
    reply = client.call(msg.UpdateSetting(name=DENIED, value=networks))
    assert reply.ok, reply.error

    def everyone_knows() -> bool:
        answers = [client.call(msg.GetSetting(name=DENIED)).result for _ in range(4)]
        return all(a is not None and a["setting"]["value"] == networks for a in answers)

    # settings.changed reaches every service through its outbox and queue; on a loaded
    # machine that has taken more than 5 s.
    wait_until(everyone_knows, timeout=15, what=f"{DENIED} = {networks}")


def refused(reply: Reply) -> str:
    assert reply.error is not None, reply.result
    assert reply.error.code == "DESTINATION_DENIED", reply.error
    return reply.error.message


@pytest.fixture
def trap() -> Iterator[CountingListener]:
    with CountingListener("127.0.0.2") as listener:
        yield listener


def test_the_metadata_address_is_refused_unvalidated_with_the_defaults(
    stack: Any, client: BusClient
) -> None:
    message = refused(register(client, "http://169.254.169.254/latest/x.raw", validate_url=False))
    assert "169.254.169.254 is in denied network 169.254.0.0/16" in message


def test_a_redirect_to_a_denied_address_is_refused_before_it_is_connected_to(
    stack: Any, client: BusClient, trap: CountingListener
) -> None:
    deny(client, "127.0.0.2/32")
    with ScriptedServer(302, {"Location": trap.url("/latest/meta-data")}) as redirector:
        message = refused(register(client, redirector.url("/a.raw?sig=secret")))
        assert redirector.requests == 1
    assert f"leads to '{trap.url('/latest/meta-data')}'" in message
    assert "127.0.0.2 is in denied network 127.0.0.2/32" in message
    assert "secret" not in message
    assert trap.accepted == 0


def test_a_name_that_resolves_to_a_denied_address_is_refused_unconnected(
    stack: Any, client: BusClient
) -> None:
    deny(client, "127.0.0.1/32")
    with CountingListener("127.0.0.1") as listener:
        message = refused(register(client, f"http://localhost:{listener.port}/b.raw"))
        nfs = refused(register(client, "nfs://localhost/export/b.raw"))
        assert listener.accepted == 0
    for text in (message, nfs):
        assert "localhost resolves to 127.0.0.1, which is in denied network 127.0.0.1/32" in text


def test_a_denied_metalink_mirror_is_refused_unconnected(
    stack: Any, nginx: Nginx, client: BusClient, trap: CountingListener
) -> None:
    deny(client, "127.0.0.2/32")
    mirrors = [(f"{nginx.http_url}/c.raw", 1), (trap.url("/c.raw"), 2)]
    nginx.add_file("c.meta4", write_meta4("c.raw", 10, {"SHA-256": "ab" * 32}, mirrors))
    message = refused(register(client, f"{nginx.http_url}/c.meta4"))
    assert f"leads to '{trap.url('/c.raw')}'" in message and "127.0.0.2/32" in message
    assert trap.accepted == 0


def test_a_denied_nfs_server_is_refused(stack: Any, client: BusClient) -> None:
    deny(client, "127.0.0.2/32")
    reply = register(client, "nfs://127.0.0.2/export/d.raw", validate_url=False)
    assert "127.0.0.2 is in denied network 127.0.0.2/32" in refused(reply)


def test_a_refused_url_says_its_status_and_nothing_else_the_server_said(
    stack: Any, client: BusClient
) -> None:
    with ScriptedServer(404, body=b"internal body", reason="internal-reason") as server:
        reply = register(client, server.url("/e.raw"))
    assert reply.error is not None and reply.error.code == "URL_UNREACHABLE"
    assert "HTTP 404" in reply.error.message
    assert "internal" not in reply.error.message


def test_a_bad_network_in_the_setting_is_refused_naming_it(stack: Any, client: BusClient) -> None:
    reply = client.call(msg.UpdateSetting(name=DENIED, value="169.254.0.0/16,banana"))
    assert reply.error is not None and reply.error.code == "INVALID_MESSAGE"
    assert "'banana' is not a network in CIDR form" in reply.error.message


def test_the_agent_refuses_a_redirect_the_live_setting_denies_and_no_other_host_tries(
    stack: Any, client: BusClient, trap: CountingListener
) -> None:
    deny(client, "127.0.0.2/32")
    with ScriptedServer(302, {"Location": trap.url()}) as redirector:
        registered = register(client, redirector.url("/f.raw"), validate_url=False)
        assert registered.result is not None, registered.error
        outcome = client.call(
            deploy.DeployTemplate(
                template_id=registered.result["template"]["id"], zone_id="zone-1"
            ),
            timeout=30,
        )
    assert outcome.error is not None
    attempts = outcome.error.details["attempts"]
    assert [a["error_code"] for a in attempts] == ["DESTINATION_DENIED"]
    assert "127.0.0.2 is in denied network 127.0.0.2/32" in attempts[0]["message"]
    assert redirector.requests == 1 and trap.accepted == 0
