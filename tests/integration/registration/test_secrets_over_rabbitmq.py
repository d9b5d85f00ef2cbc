"""Over a real RabbitMQ: a URL's password and signature go only to the host chosen to download."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from directdl.bus.client import DIRECT_REPLY_TO, BusClient
from directdl.bus.topology import Topology
from directdl.contracts import deploy, download, host
from directdl.contracts import template as tpl
from directdl.contracts.base import Command, Message
from directdl.contracts.senders import host_user
from directdl.runtime.service import Service
from directdl_testing.accounts import TestAccounts
from directdl_testing.messages import host_says
from directdl_testing.recorder import MessageRecorder
from directdl_testing.waiting import wait_until

pytestmark = pytest.mark.integration

URL = "https://user:s3cret@127.0.0.1:1/t.qcow2?X-Amz-Signature=abc123"
SECRETS = ("s3cret", "abc123")
CHECKSUM = "{SHA-256}" + "ab" * 32
HOST = "host-1"


def leaks(anything: object) -> list[str]:
    text = anything if isinstance(anything, str) else json.dumps(anything, default=str)
    return [secret for secret in SECRETS if secret in text]


def answer(client: BusClient, command: Command) -> dict[str, Any]:
    reply = client.call(command)
    return json.loads(reply.to_json())


def send(client: BusClient, message: Message) -> None:
    client.publish(message.routing_key, message.model_dump_json(exclude_none=True).encode())


@pytest.fixture
def agent(broker_accounts: TestAccounts, topology: Topology) -> Iterator[BusClient]:
    """What host-1's agent would send, sent as its broker user, so it is believed."""
    url = broker_accounts.url(host_user(HOST))
    with BusClient(url, topology, app_id="test-agent") as agent_client:
        yield agent_client


def test_no_reply_event_or_log_line_shows_the_secrets(
    client: BusClient,
    agent: BusClient,
    registration: Service,
    recorder: MessageRecorder,
    capfd: pytest.CaptureFixture[str],
) -> None:
    replies = []
    registered = answer(
        client,
        tpl.RegisterTemplate(
            name="signed",
            url=URL,
            zone_id="zone-1",
            hypervisor="KVM",
            format="QCOW2",
            checksum=CHECKSUM,
            validate_url=False,
        ),
    )
    assert registered["ok"], registered
    template_id = registered["result"]["template"]["id"]
    assert registered["result"]["template"]["url"] == "https://***@127.0.0.1:1/t.qcow2?***"
    replies += [
        registered,
        answer(client, tpl.GetTemplate(id=template_id)),
        answer(client, tpl.ListTemplates()),
        answer(client, tpl.UpdateTemplate(id=template_id, name="signed-2")),
    ]

    for message in host_says(HOST, interval_seconds=30):
        send(agent, message)
    # Events and commands are separate queues: the host is known once host.list says so.
    wait_until(
        lambda: (
            [h["host_id"] for h in answer(client, host.ListHosts())["result"]["items"]] == [HOST]
        ),
        timeout=10,
    )
    correlation = str(uuid.uuid4())
    command = deploy.DeployTemplate(template_id=template_id, zone_id="zone-1")
    client.publish(
        command.routing_key,
        command.model_dump_json(exclude_none=True).encode(),
        correlation_id=correlation,
        reply_to=DIRECT_REPLY_TO,
    )
    [sent] = recorder.expect(f"host.{HOST}.template.download")
    assert sent.body["url"] == URL, "the chosen host is sent the URL it needs"
    assert sent.properties.app_id == "registration"
    # A careless agent quoting the URL it was given: registration passes on none of it.
    send(
        agent,
        download.DownloadFailed(
            job_id=sent.body["job_id"],
            deploy_id=sent.body["deploy_id"],
            template_id=template_id,
            host_id=HOST,
            pool_id="pool-1",
            code="CONNECTION",
            message=f"GET {URL} refused (user:s3cret, X-Amz-Signature=abc123)",
        ),
    )
    failed = json.loads(client.wait_reply(correlation, 30).to_json())
    assert failed["error"]["code"] == "DOWNLOAD_FAILED"
    assert "CONNECTION" in failed["error"]["message"]
    replies += [failed, answer(client, tpl.DeleteTemplate(id=template_id))]

    for reply in replies:
        assert leaks(reply) == [], reply
    recorder.expect("template.deleted")
    # Everything on the bus but what this test sent, and the one command meant to carry the URL.
    published = [
        m
        for m in recorder.messages
        if m.properties.app_id not in (client.app_id, agent.app_id) and m is not sent
    ]
    assert {m.routing_key for m in published} >= {
        "template.registered",
        "template.updated",
        "template.deploy.failed",
        "template.deleted",
    }
    for message in published:
        assert leaks(message.body) == [], message.routing_key
    logged = capfd.readouterr()
    assert "template.register" in logged.err + logged.out, "the service's log was not captured"
    assert leaks(logged.err + logged.out) == []


@pytest.mark.parametrize(
    "url",
    ["ftp://user:s3cret@127.0.0.1/t.qcow2?sig=abc123", "https://user:s3cret@h/t.vhd?sig=abc123"],
    ids=["scheme", "extension"],
)
def test_a_refused_url_is_answered_and_logged_without_its_secrets(
    client: BusClient, registration: Service, url: str
) -> None:
    # Every log entry of the service's threads, as structured data before it is rendered.
    with structlog.testing.capture_logs() as logs:
        reply = answer(
            client,
            tpl.RegisterTemplate(
                name="t", url=url, zone_id="zone-1", hypervisor="KVM", format="QCOW2"
            ),
        )
    assert reply["ok"] is False and "***@" in reply["error"]["message"]
    assert leaks(reply) == []
    assert [e for e in logs if e["event"] == "message.rejected"], logs
    assert leaks(logs) == []
