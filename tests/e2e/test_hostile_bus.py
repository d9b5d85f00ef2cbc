"""Attacks on the bus, as an operator and as another host: refused, answered, or ignored.

Services run as processes, each as its own broker user with a deployment's permissions on
this test's exchange, so both the broker's checks and the consumers' are in play.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pika.exceptions import ChannelClosedByBroker

from directdl.bus.client import BusClient
from directdl.bus.topology import Topology
from directdl.contracts import deploy
from directdl.contracts.certificate import UploadCertificate
from directdl.contracts.host import HostList, ListHosts
from directdl.contracts.senders import host_user
from directdl_testing.accounts import TestAccounts
from directdl_testing.certs import make_self_signed
from directdl_testing.nginx import Nginx
from directdl_testing.recorder import MessageRecorder
from directdl_testing.waiting import wait_until

pytestmark = pytest.mark.e2e

BEAT = "0.5"
ACCESS_REFUSED = 403
PRECONDITION_FAILED = 406
HOSTS = ("host-1", "host-2", "host-3")
CLEAR_TOPICS = ("rabbitmqctl", "-q", "clear_topic_permissions", "-p")
FORGED_DIGEST = "{SHA-256}" + "0" * 64


@pytest.fixture
def restricted(broker_accounts: TestAccounts, topology: Topology) -> Iterator[TestAccounts]:
    """The host agents' and the operator's topic permissions, as compose gives them."""
    broker_accounts.restrict_topics(topology)
    yield broker_accounts
    for user in ("cli", *(host_user(h) for h in ("host-1", "host-2", "host-3"))):
        subprocess.run(
            [*CLEAR_TOPICS, broker_accounts.vhost, user, topology.exchange],
            capture_output=True,
            check=False,
        )


@pytest.fixture
def nginx() -> Iterator[Nginx]:
    with Nginx(slow_rate="2m") as server:
        yield server


@pytest.fixture
def stack(start_service: Callable[..., Any], restricted: TestAccounts) -> dict[str, Any]:
    services = {
        "registration": start_service(
            "registration", extra_env={"REGISTRATION_WATCHDOG_INTERVAL": BEAT}
        ),
        "certificate": start_service("certificate", env_prefix="CERTIFICATE"),
    }
    for host_id in ("host-1", "host-2"):
        services[host_id] = start_service(
            "host_agent",
            env_prefix="HOST_AGENT",
            extra_env={
                "HOST_AGENT_HOST_ID": host_id,
                "HOST_AGENT_ZONE_ID": "zone-1",
                "HOST_AGENT_POOL_ID": f"pool-{host_id}",
                "HOST_AGENT_HEARTBEAT_INTERVAL": BEAT,
            },
        )
    return services


class Attackers:
    """One client per kind of attacker; `forge` tries a message as each, and says what the
    broker did with it."""

    def __init__(self, accounts: TestAccounts, admin_url: str, topology: Topology) -> None:
        self.clients = {
            # An operator with the CLI's rights, and one with every right on the vhost.
            "operator": BusClient(accounts.url("cli"), topology),
            "administrator": BusClient(admin_url, topology),
        }
        self.hosts = {h: BusClient(accounts.url(host_user(h)), topology) for h in HOSTS}
        self.accepted_by_broker = 0

    def close(self) -> None:
        for client in [*self.clients.values(), *self.hosts.values()]:
            client.close()

    def forge(self, routing_key: str, body: dict[str, Any], victim: str) -> dict[str, str]:
        """Publish as each attacker, the host agent among them being one that is not the
        victim; return who got it past the broker."""
        outcome = {}
        other = next(h for h in HOSTS if h != victim)
        impostor = self.hosts[other]
        for name, client in [*self.clients.items(), ("another host", impostor)]:
            try:
                client.publish(routing_key, json.dumps(body).encode())
            except ChannelClosedByBroker as err:
                assert err.reply_code == ACCESS_REFUSED, err
                outcome[name] = "refused by the broker"
            else:
                self.accepted_by_broker += 1
                outcome[name] = "published"
        # Claiming to be the victim in `user_id` itself: the broker checks that property.
        impostor.user_id = host_user(victim)
        try:
            with pytest.raises(ChannelClosedByBroker) as refused:
                impostor.publish(routing_key, json.dumps(body).encode())
            assert refused.value.reply_code in (ACCESS_REFUSED, PRECONDITION_FAILED)
        finally:
            impostor.user_id = host_user(other)
        return outcome


@pytest.fixture
def attackers(restricted: TestAccounts, amqp_url: str, topology: Topology) -> Iterator[Attackers]:
    forgers = Attackers(restricted, amqp_url, topology)
    yield forgers
    forgers.close()


def metric(port: int, name: str, **labels: str) -> float:
    """The sum of one metric's series that carry these labels, on a service's /metrics."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(f"{name}{{") and all(p in line for p in wanted.split(","))
    )


def heartbeat(host_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "host_id": host_id,
        "zone_id": "zone-1",
        "cluster_id": "cluster-1",
        "state": "Up",
        "interval_seconds": 0.5,
        "inventory_digest": "{SHA-256}" + "0" * 64,
        "sent_at": datetime.now(UTC).isoformat(),
    } | overrides


def hosts(client: BusClient) -> dict[str, str]:
    reply = client.call(ListHosts(zone_id="zone-1"))
    assert reply.ok, reply.error
    return {h.host_id: h.state for h in HostList.model_validate(reply.result).items}


def test_forged_reports_and_commands_are_refused_or_ignored_while_a_deploy_runs(
    stack: dict[str, Any],
    attackers: Attackers,
    client: BusClient,
    recorder: MessageRecorder,
    nginx: Nginx,
    data_dir: Path,
) -> None:
    data = os.urandom(6 * 2**20)  # three seconds at the slow location's 2 MB/s
    nginx.add_file("real.raw", data)
    nginx.add_file("evil.raw", b"attacker's bytes" * 4096)
    checksum = "{SHA-256}" + hashlib.sha256(data).hexdigest()
    registered = client.call_raw(
        "template.register",
        json.dumps(
            {
                "name": "real",
                "url": f"{nginx.http_url}/slow/real.raw",
                "zone_id": "zone-1",
                "hypervisor": "KVM",
                "format": "RAW",
                "checksum": checksum,
            }
        ).encode(),
    )
    assert registered.ok, registered.error
    assert registered.result is not None
    template_id = registered.result["template"]["id"]
    wait_until(lambda: hosts(client) == {"host-1": "Up", "host-2": "Up"}, timeout=15)
    rejected_before = metric(
        stack["registration"].health_port, "directdl_messages_rejected_total", reason="sender"
    )

    client.publish(
        "template.deploy",
        deploy.DeployTemplate(template_id=template_id, zone_id="zone-1").model_dump_json().encode(),
        reply_to="amq.rabbitmq.reply-to",
        correlation_id="the-deploy",
    )
    running = recorder.expect("template.download.progress", timeout=15)[0].body
    busy = running["host_id"]
    idle = next(h for h in ("host-1", "host-2") if h != busy)
    report = {k: running[k] for k in ("job_id", "deploy_id", "template_id", "host_id", "pool_id")}

    outcomes = {
        "a completion for the running job, path and digest forged": attackers.forge(
            "template.download.completed",
            report
            | {
                "path": "/nonexistent/forged",
                "size": 1,
                "digest": FORGED_DIGEST,
                "cached": False,
                "duration_s": 0.1,
            },
            busy,
        ),
        "a failure of the running job": attackers.forge(
            "template.download.failed",
            report | {"code": "CHECKSUM_MISMATCH", "message": "forged"},
            busy,
        ),
        "the busy host going Down": attackers.forge(
            "host.heartbeat", heartbeat(busy, state="Down"), busy
        ),
        "a host that does not exist": attackers.forge(
            "host.heartbeat", heartbeat("host-3"), "host-3"
        ),
        "an interval that overflows": attackers.forge(
            "host.heartbeat", heartbeat(idle, interval_seconds=1e300), idle
        ),
        "the attacker's bytes under a real template id": attackers.forge(
            f"host.{idle}.template.download",
            {
                "job_id": "forged-job",
                "deploy_id": "forged-deploy",
                "template_id": template_id,
                "url": f"{nginx.http_url}/evil.raw",
                "protocol": "http",
                "format": "RAW",
            },
            idle,
        ),
        "a certificate removed from a host": attackers.forge(
            "cert.host.removed",
            {
                "operation_id": "forged",
                "certificate_id": "forged",
                "alias": "forged",
                "host_id": busy,
                "outcome": "removed",
            },
            busy,
        ),
    }

    reply = client.wait_reply("the-deploy", timeout=60)

    # The deploy ended as the real download did, on the host that did it, with its bytes.
    assert reply.ok, reply.error
    assert reply.result is not None
    assert (reply.result["host_id"], reply.result["digest"]) == (busy, checksum)
    assert (data_dir / "host_agent" / "pools" / busy / template_id).read_bytes() == data
    assert [a["state"] for a in reply.result["attempts"]] == ["SUCCEEDED"]
    # Every host is as it really is; no attacker's file, no request for it.
    assert hosts(client) == {"host-1": "Up", "host-2": "Up"}
    assert not (data_dir / "host_agent" / "pools" / idle / template_id).exists()
    assert not [e for e in nginx.access_log_lines() if "evil" in e.uri]
    again = client.call(deploy.DeployTemplate(template_id=template_id, zone_id="zone-1"))
    assert again.ok and again.result is not None
    assert (again.result["cached"], again.result["digest"]) == (True, checksum)
    # The zone still works for certificates too: the overflowing interval blocked nothing.
    pem, _ = make_self_signed("repo", ["DNS:repo.test"])
    uploaded = client.call(
        UploadCertificate(name="repo", zone_id="zone-1", hypervisor="KVM", certificate=pem.decode())
    )
    assert uploaded.ok and uploaded.result is not None, uploaded.error
    assert sorted((h["host_id"], h["state"]) for h in uploaded.result["hosts"]) == [
        ("host-1", "UPLOADED"),
        ("host-2", "UPLOADED"),
    ]
    # What got past the broker was dropped by the consumer it was meant for, and counted:
    # every forgery registration consumes, but the one that fails validation first.
    for_registration = [
        "a completion for the running job, path and digest forged",
        "a failure of the running job",
        "the busy host going Down",
        "a host that does not exist",
    ]
    published = [
        sum(v == "published" for v in outcomes[what].values()) for what in for_registration
    ]
    dropped = metric(
        stack["registration"].health_port, "directdl_messages_rejected_total", reason="sender"
    )
    assert dropped - rejected_before == sum(published) == 2 * len(for_registration)
    assert metric(stack[idle].health_port, "directdl_messages_rejected_total", reason="sender") == 1
    removed = outcomes["a certificate removed from a host"]
    assert removed == {
        "operator": "refused by the broker",
        "administrator": "published",
        "another host": "published",
    }
    assert (
        metric(
            stack["certificate"].health_port,
            "directdl_messages_rejected_total",
            routing_key="cert.host.removed",
        )
        == 2
    )
    for what, outcome in outcomes.items():
        assert outcome["operator"] == "refused by the broker", what
    tried = 4 * len(outcomes)
    print(f"\nforgeries: {tried} tried, {attackers.accepted_by_broker} past the broker, 0 believed")


def register_body(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "hostile",
        "url": "http://127.0.0.1:1/t.raw",
        "zone_id": "zone-1",
        "hypervisor": "KVM",
        "format": "RAW",
        "validate_url": False,
    } | overrides


def call_as(client: BusClient, routing_key: str, body: bytes) -> dict[str, Any] | str:
    """The reply as JSON, or "refused by the broker" when the publish itself was."""
    try:
        reply = client.call_raw(routing_key, body, timeout=20)
    except ChannelClosedByBroker as err:
        assert err.reply_code == ACCESS_REFUSED, err
        return "refused by the broker"
    answered: dict[str, Any] = json.loads(reply.to_json())
    return answered


def test_hostile_commands_get_a_stable_code_and_leak_nothing(
    start_service: Callable[..., Any],
    restricted: TestAccounts,
    topology: Topology,
    postgres_url: str,
    cli: Any,
) -> None:
    start_service("registration", extra_env={"REGISTRATION_DATABASE_URL": postgres_url})
    operator = BusClient(restricted.url("cli"), topology)
    host = BusClient(restricted.url(host_user("host-2")), topology)
    twenty_mib = "x" * (20 * 2**20)
    attacks: dict[str, tuple[str, dict[str, Any] | bytes, str]] = {
        "the cloud metadata address": (
            "template.register",
            register_body(url="http://169.254.169.254/latest/meta-data/x.raw"),
            "DESTINATION_DENIED",
        ),
        "a page past any number": ("template.list", {"page": 10**20}, "INVALID_MESSAGE"),
        "a header HTTP cannot carry": (
            "template.register",
            register_body(details={"HTTP_HEADER:X-Name": "Grüße ✓"}),
            "INVALID_MESSAGE",
        ),
        "a NUL byte in a name": (
            "template.register",
            register_body(name="a\0b"),
            "INVALID_MESSAGE",
        ),
        "a NUL byte in a keyword": ("template.list", {"keyword": "a\0"}, "INVALID_MESSAGE"),
        "a NUL byte in an id": ("template.get", {"id": "\0"}, "INVALID_MESSAGE"),
        "20 MiB of details": (
            "template.register",
            register_body(details={"big": twenty_mib}),
            "INVALID_MESSAGE",
        ),
        "a 20 MB body that is not JSON": (
            "template.register",
            b"{" + twenty_mib.encode(),
            "INVALID_MESSAGE",
        ),
    }
    try:
        for what, (key, body, code) in attacks.items():
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            assert call_as(host, key, raw) == "refused by the broker", what
            answer = call_as(operator, key, raw)
            assert isinstance(answer, dict), what
            assert answer["ok"] is False and answer["error"]["code"] == code, (what, answer)
            text = json.dumps(answer)
            assert len(text) < 4096, (what, len(text))
            for leak in ("SELECT", "INSERT", "Traceback", "psycopg", "sqlalchemy"):
                assert leak not in text, (what, leak)

        # What the list shows of a signed URL, and names rich would read as markup.
        for name, url in [
            ("signed", "https://user:s3cret@127.0.0.1:1/t.raw?X-Amz-Signature=abc123"),
            ("a[/b]", "http://127.0.0.1:1/a.raw"),
            ("x:smile:y", "http://127.0.0.1:1/x.raw"),
        ]:
            answer = call_as(
                operator,
                "template.register",
                json.dumps(register_body(name=name, url=url)).encode(),
            )
            assert isinstance(answer, dict) and answer["ok"], answer
        listed = call_as(operator, "template.list", b"{}")
        assert isinstance(listed, dict) and "s3cret" not in json.dumps(listed)
        assert "abc123" not in json.dumps(listed)
        table = cli("template", "list", env={"COLUMNS": "200"})
        assert table.code == 0, table
        assert "a[/b]" in table.stdout and "x:smile:y" in table.stdout
        assert (
            "s3cret" not in table.stdout
            and "\N{SMILING FACE WITH SMILING EYES}" not in table.stdout
        )
    finally:
        operator.close()
        host.close()
