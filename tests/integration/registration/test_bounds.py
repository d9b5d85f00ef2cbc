"""Hostile input to registration on PostgreSQL over RabbitMQ: refused at the edge, answered
briefly, and the zone keeps working."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from directdl.bus.client import BusClient
from directdl.bus.topology import Topology
from directdl.contracts.reply import Reply
from directdl.contracts.senders import host_user
from directdl_testing.accounts import TestAccounts
from directdl_testing.services import running
from directdl_testing.waiting import wait_until
from registration.bootstrap import bootstrap
from registration.config import RegistrationSettings

pytestmark = pytest.mark.integration

MIB = 1 << 20
HOST = "host-1"


@pytest.fixture
def on_postgresql(
    registration_settings: Callable[..., RegistrationSettings], postgres_url: str
) -> Iterator[None]:
    with running(bootstrap(registration_settings(database_url=postgres_url))):
        yield


def call(client: BusClient, routing_key: str, body: dict[str, Any] | bytes) -> tuple[Reply, int]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    reply = client.call_raw(routing_key, raw, timeout=20)
    return reply, len(reply.to_json())


def refused(reply: Reply) -> str:
    assert reply.error is not None, reply
    assert reply.error.code == "INVALID_MESSAGE", reply.error
    text = reply.to_json().decode()
    for leak in ("SELECT", "INSERT", "Traceback", "psycopg"):
        assert leak not in text
    return reply.error.message


def register_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "name": "centos-9",
        "url": "https://images.example/centos-9.qcow2",
        "zone_id": "zone-1",
        "hypervisor": "KVM",
        "format": "QCOW2",
    }
    return body | overrides


def beat(interval: float) -> dict[str, Any]:
    return {
        "host_id": HOST,
        "zone_id": "zone-1",
        "cluster_id": "cluster-1",
        "state": "Up",
        "interval_seconds": interval,
        "inventory_digest": "{SHA-256}" + "ab" * 32,
        "sent_at": datetime.now(UTC).isoformat(),
    }


def test_a_page_beyond_any_listing_is_invalid(on_postgresql: None, client: BusClient) -> None:
    reply, _ = call(client, "template.list", b'{"page": 100000000000000000000}')

    assert "page" in refused(reply)


@pytest.mark.parametrize(
    ("routing_key", "body", "field"),
    [
        ("template.register", register_body(name="cent\x00os"), "name"),
        ("template.register", register_body(zone_id="zone\x00"), "zone_id"),
        ("template.list", {"keyword": "cent\x00"}, "keyword"),
        ("template.list", {"name": "\x00"}, "name"),
        ("template.list", {"zone_id": "z\x00"}, "zone_id"),
        ("template.get", {"id": "abc\x00"}, "id"),
        ("template.delete", {"id": "\x00"}, "id"),
        ("host.list", {"zone_id": "z\x00"}, "zone_id"),
        ("template.evict", {"template_id": "\x00"}, "template_id"),
        ("template.evict", {"host_id": "h\x00", "zone_id": "zone-1"}, "host_id"),
    ],
)
def test_a_nul_is_refused_before_postgresql_sees_it(
    on_postgresql: None, client: BusClient, routing_key: str, body: dict[str, Any], field: str
) -> None:
    reply, _ = call(client, routing_key, body)

    message = refused(reply)
    assert f"{field} contains a NUL character" in message


def test_a_header_http_cannot_carry_is_refused(on_postgresql: None, client: BusClient) -> None:
    details = {"HTTP_HEADER:X-Token": "snow\u2603man"}
    reply, _ = call(client, "template.register", register_body(details=details))

    assert "X-Token" in refused(reply)


def test_twenty_mebibytes_of_details_get_a_short_refusal(
    on_postgresql: None, client: BusClient
) -> None:
    details = {"blob": "A" * 20 * MIB}
    reply, size = call(client, "template.register", register_body(details=details))

    refused(reply)
    assert size < 4096
    listing, _ = call(client, "template.list", {})
    assert listing.result is not None and listing.result["total"] == 0


def test_a_body_over_the_limit_is_refused_by_its_size(
    on_postgresql: None, client: BusClient
) -> None:
    body = json.dumps(register_body(details={"note": "B" * (3 * MIB // 2)})).encode()
    reply, size = call(client, "template.register", body)

    assert f"{len(body)} bytes" in refused(reply)
    assert size < 1024 and "BBBB" not in reply.to_json().decode()


def test_a_huge_heartbeat_interval_is_refused_and_hosts_still_list(
    on_postgresql: None,
    broker_accounts: TestAccounts,
    topology: Topology,
    client: BusClient,
) -> None:
    with BusClient(broker_accounts.url(host_user(HOST)), topology) as agent:
        hostile, _ = call(agent, "host.heartbeat", beat(1e300))
        # A heartbeat that passes is handled in a batch, never answered.
        agent.publish("host.heartbeat", json.dumps(beat(5)).encode())

        def listed() -> list[tuple[str, str]]:
            hosts, _ = call(client, "host.list", {})
            assert hosts.ok and hosts.result is not None, hosts
            return [(h["host_id"], h["state"]) for h in hosts.result["items"]]

        assert "interval_seconds" in refused(hostile)
        assert wait_until(listed, timeout=10) == [(HOST, "Up")]


def test_the_limit_is_a_live_global_setting(on_postgresql: None, client: BusClient) -> None:
    body = json.dumps(register_body(details={"note": "C" * 4000})).encode()
    padded = body[:-1] + b" " * (300 * 1024) + b"}"  # whitespace: still a valid body
    before, _ = call(client, "template.register", padded)
    change = {"name": "directdl.message.max.bytes", "value": 256 * 1024}
    updated, _ = call(client, "settings.update", change)
    after, _ = call(client, "template.register", padded)

    assert before.ok, before
    assert updated.ok, updated
    assert f"{len(padded)} bytes; at most {256 * 1024}" in refused(after)
