"""The registration service over a real RabbitMQ, driven with plain pika as a user would."""

from __future__ import annotations

import json
import urllib.request
import uuid
from typing import Any

import pika
import pytest

from directdl.bus.topology import Topology
from directdl.runtime.service import Service
from directdl_testing.recorder import MessageRecorder
from directdl_testing.waiting import wait_until

pytestmark = pytest.mark.integration

CHECKSUM = "{SHA-256}" + "ab" * 32


def register_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "name": "centos-9",
        "url": "https://images.example/centos-9.qcow2",
        "zone_id": "zone-1",
        "hypervisor": "KVM",
        "format": "QCOW2",
        "checksum": CHECKSUM,
    }
    return body | overrides


def rpc(
    amqp_url: str, topology: Topology, routing_key: str, body: bytes, message_id: str
) -> dict[str, Any]:
    """What the README shows: publish with plain pika, wait on direct reply-to."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    replies: list[tuple[pika.BasicProperties, bytes]] = []
    channel.basic_consume(
        "amq.rabbitmq.reply-to",
        lambda _c, _m, props, data: replies.append((props, data)),
        auto_ack=True,
    )
    correlation_id = str(uuid.uuid4())
    channel.basic_publish(
        topology.exchange,
        routing_key,
        body,
        pika.BasicProperties(
            content_type="application/json",
            message_id=message_id,
            type=routing_key,
            reply_to="amq.rabbitmq.reply-to",
            correlation_id=correlation_id,
        ),
    )
    for _ in range(100):
        if replies:
            break
        connection.process_data_events(time_limit=0.1)
    connection.close()
    assert len(replies) == 1, "expected exactly one reply"
    props, data = replies[0]
    assert props.correlation_id == correlation_id
    return json.loads(data)


def test_register_replies_with_the_template_and_emits_an_event(
    amqp_url: str, topology: Topology, registration: Service, recorder: MessageRecorder
) -> None:
    reply = rpc(
        amqp_url, topology, "template.register", json.dumps(register_body()).encode(), "m-1"
    )

    assert reply["ok"] is True
    template = reply["result"]["template"]
    assert template["name"] == "centos-9"
    assert template["protocol"] == "https"
    assert template["checksum"] == CHECKSUM
    event = recorder.expect("template.registered")[0]
    assert event.body["template"]["id"] == template["id"]
    assert event.properties.message_id and event.properties.type == "template.registered"


def test_the_same_message_id_twice_registers_one_template(
    amqp_url: str, topology: Topology, registration: Service, recorder: MessageRecorder
) -> None:
    body = json.dumps(register_body()).encode()
    first = rpc(amqp_url, topology, "template.register", body, "same-id")
    second = rpc(amqp_url, topology, "template.register", body, "same-id")

    assert first == second
    listing = rpc(amqp_url, topology, "template.list", b"{}", "list-1")
    assert listing["result"]["total"] == 1
    recorder.expect("template.registered")
    recorder.poll(0.5)
    assert len([m for m in recorder.messages if m.routing_key == "template.registered"]) == 1


@pytest.mark.parametrize(
    ("overrides", "code", "named"),
    [
        ({"checksum": "{SHA-256}xyz"}, "INVALID_MESSAGE", "{SHA-256}xyz"),
        ({"url": "ftp://images.example/c.qcow2"}, "UNSUPPORTED", "ftp"),
        ({"hypervisor": "VMware"}, "UNSUPPORTED", "VMware"),
        ({"format": "VHD"}, "INVALID_MESSAGE", "VHD"),
    ],
)
def test_bad_input_gets_a_stable_code_naming_the_value(
    amqp_url: str,
    topology: Topology,
    registration: Service,
    overrides: dict[str, str],
    code: str,
    named: str,
) -> None:
    body = json.dumps(register_body(**overrides)).encode()
    reply = rpc(amqp_url, topology, "template.register", body, str(uuid.uuid4()))

    assert reply["ok"] is False
    assert reply["error"]["code"] == code
    assert named in reply["error"]["message"]
    # nothing was registered, and the service goes on serving
    assert (
        rpc(amqp_url, topology, "template.list", b"{}", str(uuid.uuid4()))["result"]["total"] == 0
    )


def test_malformed_json_is_answered_and_dead_lettered(
    amqp_url: str, topology: Topology, registration: Service
) -> None:
    reply = rpc(amqp_url, topology, "template.register", b"{not json", "bad-json")

    assert reply["error"]["code"] == "INVALID_MESSAGE"
    assert reply["error"]["details"]["errors"][0]["field"] == "(body)"
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    dead = None
    for _ in range(50):
        method, props, body = channel.basic_get(
            topology.dead_letter_queue("registration"), auto_ack=True
        )
        if method:
            dead = (props, body)
            break
        connection.process_data_events(time_limit=0.1)
    connection.close()
    assert dead is not None, "the malformed message was not dead-lettered"
    props, body = dead
    assert body == b"{not json"
    assert "Invalid JSON" in props.headers["x-directdl-error"]


def test_readyz_reports_broker_and_database(registration: Service) -> None:
    url = f"http://127.0.0.1:{registration.health.port}/readyz"
    # The consumer is connected once the fixture returns; the outbox relay, on a connection
    # of its own, may still be connecting, and until then the service is not ready.
    relay = registration.consumer.relay
    assert relay is not None
    wait_until(relay.connected.is_set, what="the relay's connection")
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.load(response)
        assert response.status == 200
    assert body == {"ready": True, "checks": {"broker": {"ok": True}, "database": {"ok": True}}}
