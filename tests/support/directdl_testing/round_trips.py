"""Round trips timed from an operator's connection, and a raw-pika 3-hop echo to compare
them with: what the bus costs with nothing of the services' own work."""

from __future__ import annotations

import json
import multiprocessing
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from multiprocessing.synchronize import Event as EventType
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.spec import Basic

from directdl.bus.client import DIRECT_REPLY_TO
from directdl.bus.connection import broker_user
from directdl.bus.topology import Topology
from directdl.contracts.base import Command

ECHO_REQUEST, REPLY = "bench.echo.request", ""
# Each echo hop's bindings, and where it sends what comes in: operator -> a -> b -> a -> reply.
ECHO_ROUTES = {
    "a": {ECHO_REQUEST: "bench.echo.forward", "bench.echo.back": REPLY},
    "b": {"bench.echo.forward": "bench.echo.back"},
}


class Operator:
    """One raw-pika connection that publishes with confirms, as the CLI does, and takes the
    replies from direct reply-to; the same client times the deploys and the echo."""

    def __init__(self, url: str, exchange: str) -> None:
        self.exchange = exchange
        self.user = broker_user(url)
        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()
        self.channel.basic_consume(DIRECT_REPLY_TO, self._on_reply, auto_ack=True)
        self.sent: dict[str, float] = {}  # correlation id -> wall clock at the publish
        self.replies: dict[str, tuple[float, dict[str, Any]]] = {}  # -> (wall clock, reply)
        self.answers = 0

    def _on_reply(
        self, _ch: BlockingChannel, _m: Basic.Deliver, props: pika.BasicProperties, body: bytes
    ) -> None:
        self.answers += 1  # every reply, a second one to a request too
        self.replies[props.correlation_id or ""] = (time.time(), json.loads(body))

    def send(self, routing_key: str, body: bytes) -> str:
        correlation_id = str(uuid.uuid4())
        props = pika.BasicProperties(
            content_type="application/json",
            message_id=str(uuid.uuid4()),
            correlation_id=correlation_id,
            reply_to=DIRECT_REPLY_TO,
            user_id=self.user,
            delivery_mode=pika.DeliveryMode.Persistent,
        )
        self.sent[correlation_id] = time.time()
        self.channel.basic_publish(self.exchange, routing_key, body, props, mandatory=True)
        return correlation_id

    def wait(self, correlation_ids: Sequence[str], timeout: float) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while not all(c in self.replies for c in correlation_ids):
            if time.monotonic() > deadline:
                missing = sum(c not in self.replies for c in correlation_ids)
                raise SystemExit(f"{missing} of {len(correlation_ids)} replies missing")
            self.connection.process_data_events(time_limit=0.05)
        return [self.replies[c][1] for c in correlation_ids]

    def round_trip(
        self, routing_key: str, body: bytes, timeout: float
    ) -> tuple[float, dict[str, Any]]:
        """Seconds from the publish to the reply, and the reply."""
        started = time.monotonic()
        reply = self.wait([self.send(routing_key, body)], timeout)[0]
        return time.monotonic() - started, reply

    def call(self, command: Command, timeout: float = 30.0) -> dict[str, Any]:
        body = command.model_dump_json(exclude_none=True).encode()
        _, reply = self.round_trip(command.routing_key, body, timeout)
        if not reply.get("ok"):
            raise SystemExit(f"{command.routing_key} failed: {reply.get('error')}")
        return dict(reply["result"])

    def close(self) -> None:
        self.connection.close()


def echo_hop(url: str, topology: Topology, role: str, ready: EventType, stop: EventType) -> None:
    """A raw-pika consumer that publishes onward with confirms and then acks, as a service
    hop does: hop "a" forwards the request to "b", and replies when b's answer comes back.
    Quorum queues and persistent messages, as the services use."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=8)
    publisher = connection.channel()
    publisher.confirm_delivery()
    topology.declare_exchanges(channel)
    onwards = ECHO_ROUTES[role]
    for key in onwards:
        queue = f"{topology.queue_prefix}echo-{role}.{key}"
        channel.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
        channel.queue_bind(queue, topology.exchange, key)

    def on_message(
        ch: BlockingChannel, method: Basic.Deliver, props: pika.BasicProperties, body: bytes
    ) -> None:
        # The operator's reply address travels in a header, as a deploy keeps it in its row.
        reply_to = props.reply_to or str((props.headers or {})["reply_to"])
        onward = pika.BasicProperties(
            delivery_mode=pika.DeliveryMode.Persistent,
            correlation_id=props.correlation_id,
            headers={"reply_to": reply_to},
        )
        key = onwards[method.routing_key]
        if key == REPLY:
            publisher.basic_publish("", reply_to, b'{"ok": true}', onward)
        else:
            publisher.basic_publish(topology.exchange, key, body, onward)
        ch.basic_ack(method.delivery_tag)

    for key in onwards:
        channel.basic_consume(f"{topology.queue_prefix}echo-{role}.{key}", on_message)
    ready.set()
    while not stop.is_set():
        connection.process_data_events(time_limit=0.1)
    for key in onwards:
        channel.queue_delete(f"{topology.queue_prefix}echo-{role}.{key}")
    connection.close()


@contextmanager
def echo_hops(url: str, topology: Topology, roles: Sequence[str] = ("b", "a")) -> Iterator[None]:
    """The echo's hops, each in a process of its own, until the block ends."""
    spawn = multiprocessing.get_context("spawn")
    stop = spawn.Event()
    started = []
    try:
        for role in roles:
            ready = spawn.Event()
            process = spawn.Process(
                target=echo_hop, args=(url, topology, role, ready, stop), daemon=True
            )
            process.start()
            started.append(process)
            if not ready.wait(20):
                raise SystemExit(f"echo hop {role} did not start")
        yield
    finally:
        stop.set()
        for process in started:
            process.join(10)
