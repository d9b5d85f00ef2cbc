"""template.register on one registration instance, pipelined, against raw-pika anchors."""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.synchronize import Event as EventType
from pathlib import Path

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.spec import Basic

from directdl.bus.client import DIRECT_REPLY_TO
from directdl.bus.topology import Topology
from directdl.runtime.logging import configure_logging
from directdl.runtime.settings import DEFAULT_AMQP_URL
from directdl_testing.accounts import TestAccounts
from directdl_testing.isolation import remove_topology, unique_topology
from directdl_testing.processes import ServiceProcess, clean_env, free_port
from registration.config import RegistrationSettings

VHOST = "directdl-bench"
ANCHOR_KEY = "bench.anchor"
TARGET = 1000.0  # registers/s


def register_body(run: str, n: int) -> bytes:
    return json.dumps(
        {
            "name": f"bench-{run}-{n}",
            "url": f"https://images.example/{run}/{n}.qcow2",
            "zone_id": "zone-1",
            "hypervisor": "KVM",
            "format": "QCOW2",
            "validate_url": False,
        }
    ).encode()


def pipelined(url: str, exchange: str, key: str, bodies: list[bytes], timeout: float) -> float:
    """Publish every body at once, collect a reply to each; the commands per second."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    user = pika.URLParameters(url).credentials.username  # type: ignore[attr-defined]
    answered: set[str] = set()
    failed: list[bytes] = []

    def on_reply(
        _ch: BlockingChannel, _m: Basic.Deliver, props: pika.BasicProperties, body: bytes
    ) -> None:
        answered.add(props.correlation_id or "")
        if not json.loads(body).get("ok", False):
            failed.append(body)

    channel.basic_consume(DIRECT_REPLY_TO, on_reply, auto_ack=True)
    started = time.monotonic()
    for body in bodies:
        props = pika.BasicProperties(
            content_type="application/json",
            message_id=str(uuid.uuid4()),
            correlation_id=str(uuid.uuid4()),
            reply_to=DIRECT_REPLY_TO,
            user_id=user,
            delivery_mode=pika.DeliveryMode.Persistent,
        )
        channel.basic_publish(exchange, key, body, props)
    deadline = started + timeout
    while len(answered) < len(bodies):
        if time.monotonic() > deadline:
            raise SystemExit(f"{key}: {len(answered)} of {len(bodies)} answered in {timeout:g} s")
        connection.process_data_events(time_limit=0.1)
    elapsed = time.monotonic() - started
    connection.close()
    if failed:
        raise SystemExit(f"{key}: {len(failed)} failed, the first: {failed[0][:300]!r}")
    return len(bodies) / elapsed


class Anchor:
    """A trivial raw-pika consumer in a process of its own, as the service runs: manual ack
    and a reply, optionally one SQLite commit (WAL, the default synchronous=FULL, so an
    fsync) per message, all on one thread."""

    def __init__(self, url: str, topology: Topology, database: Path | None, prefetch: int):
        spawn = multiprocessing.get_context("spawn")
        self.ready, self.stop = spawn.Event(), spawn.Event()
        self.process = spawn.Process(
            target=consume,
            args=(url, topology, database, prefetch, self.ready, self.stop),
            daemon=True,
        )

    def __enter__(self) -> Anchor:
        self.process.start()
        if not self.ready.wait(20):
            raise SystemExit("the anchor consumer did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.process.join(10)


def consume(
    url: str,
    topology: Topology,
    database: Path | None,
    prefetch: int,
    ready: EventType,
    stop: EventType,
) -> None:
    db = None
    if database is not None:
        db = sqlite3.connect(database)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY, body BLOB)")
        db.commit()
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=prefetch)
    topology.declare_exchanges(channel)
    # Quorum and durable, as a service's queue is.
    queue = channel.queue_declare(
        f"{topology.queue_prefix}anchor", durable=True, arguments={"x-queue-type": "quorum"}
    ).method.queue
    channel.queue_bind(queue, topology.exchange, ANCHOR_KEY)

    def on_message(
        ch: BlockingChannel, method: Basic.Deliver, props: pika.BasicProperties, body: bytes
    ) -> None:
        if db is not None:
            db.execute("INSERT INTO seen VALUES (?, ?)", (props.message_id, body))
            db.commit()
        reply = pika.BasicProperties(correlation_id=props.correlation_id)
        ch.basic_publish("", props.reply_to, b'{"ok": true}', reply)
        ch.basic_ack(method.delivery_tag)

    tag = channel.basic_consume(queue, on_message)
    ready.set()
    while not stop.is_set():
        connection.process_data_events(time_limit=0.1)
    channel.basic_cancel(tag)
    channel.queue_delete(queue)
    connection.close()
    if db is not None:
        db.close()


def measure(label: str, run: Callable[[], float]) -> float:
    rate = run()
    print(f"{label:<48} {rate:>8,.0f}/s", flush=True)
    return rate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=2000, help="commands per measurement")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per measurement")
    parser.add_argument("--workers", type=int, help="registration's handler threads")
    parser.add_argument("--prefetch", type=int, help="registration's unacked deliveries")
    parser.add_argument("--strict", action="store_true", help=f"exit 1 below {TARGET:g}/s")
    args = parser.parse_args(argv)
    configure_logging("bench", "WARNING")
    accounts = TestAccounts(os.environ.get("AMQP_URL", DEFAULT_AMQP_URL), vhost=VHOST)
    accounts.provision()
    topology = unique_topology()
    try:
        with tempfile.TemporaryDirectory(prefix="directdl-bench-") as tmp:
            rate = run_all(args, accounts, topology, Path(tmp))
    finally:
        remove_topology(accounts.admin_url, topology)
    return 1 if args.strict and rate < TARGET else 0


def run_all(
    args: argparse.Namespace, accounts: TestAccounts, topology: Topology, tmp: Path
) -> float:
    prefetch = args.prefetch or int(RegistrationSettings.model_fields["prefetch"].default)
    print(f"{args.count} commands pipelined to one consumer process, prefetch {prefetch}")
    operator, admin = accounts.url("cli"), accounts.admin_url
    anchor_body = [b"{}"] * args.count
    with Anchor(admin, topology, None, prefetch):
        pipelined(admin, topology.exchange, ANCHOR_KEY, anchor_body[:100], args.timeout)
        measure(
            "(a) raw pika: ack + reply",
            lambda: pipelined(admin, topology.exchange, ANCHOR_KEY, anchor_body, args.timeout),
        )
    with Anchor(admin, topology, tmp / "anchor.db", prefetch):
        measure(
            "(b) raw pika: ack + reply + SQLite commit",
            lambda: pipelined(admin, topology.exchange, ANCHOR_KEY, anchor_body, args.timeout),
        )
    with registration(args, accounts, topology, tmp):
        warm = [register_body("warm", n) for n in range(100)]
        pipelined(operator, topology.exchange, "template.register", warm, args.timeout)
        bodies = [register_body("run", n) for n in range(args.count)]
        return measure(
            "directdl registration: template.register",
            lambda: pipelined(
                operator, topology.exchange, "template.register", bodies, args.timeout
            ),
        )


@contextmanager
def registration(
    args: argparse.Namespace, accounts: TestAccounts, topology: Topology, tmp: Path
) -> Iterator[ServiceProcess]:
    """The service as it is deployed: its own process, its own broker user, SQLite."""
    tuning = {
        f"REGISTRATION_{k.upper()}": str(v)
        for k in ("workers", "prefetch")
        if (v := getattr(args, k))
    }
    port = free_port()
    env = clean_env(
        AMQP_URL=accounts.url("registration"),
        DIRECTDL_EXCHANGE=topology.exchange,
        DIRECTDL_QUEUE_PREFIX=topology.queue_prefix,
        DIRECTDL_DATA_DIR=str(tmp / "registration"),
        DIRECTDL_LOG_LEVEL="WARNING",
        REGISTRATION_HEALTH_PORT=str(port),
        **tuning,
    )
    service = ServiceProcess("registration", env, port, tmp).start()
    try:
        yield service
    finally:
        service.stop()


if __name__ == "__main__":
    sys.exit(main())
