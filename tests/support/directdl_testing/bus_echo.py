"""The 3-hop echo on directdl's own bus: each hop's inbox, outbox, SQLite commit and relay, and
no other work, so that a deploy's time splits into the bus's share and the services' own."""

from __future__ import annotations

import multiprocessing
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import ClassVar

from sqlalchemy import Column, MetaData, String, Table, delete, select

from directdl.bus.connection import connect
from directdl.bus.consumer import Consumer, ConsumerConfig, QueueSpec
from directdl.bus.dispatch import Handlers, On
from directdl.bus.processing import DEFERRED, Deferred, Processor
from directdl.bus.relay import OutboxRelay
from directdl.bus.relay_thread import RelayThread
from directdl.bus.store import MessageStore
from directdl.bus.topology import Topology
from directdl.contracts.base import Command, Event
from directdl.contracts.reply import Reply
from directdl.runtime import db
from directdl.runtime.logging import configure_logging
from directdl.runtime.uow import UnitOfWork

BUS_ECHO_REQUEST = "bench.bus.request"
START_TIMEOUT_S = 30.0

metadata = MetaData()
# What hop a keeps while the request is away, as registration keeps a deploy's reply address.
waiting = Table(
    "waiting",
    metadata,
    Column("token", String(36), primary_key=True),
    Column("reply_to", String(255), nullable=False),
    Column("correlation_id", String(255)),
)
store = MessageStore(metadata)


class EchoRequest(Command):
    routing_key: ClassVar[str] = BUS_ECHO_REQUEST
    payload: str


class EchoForwarded(Event):
    routing_key: ClassVar[str] = "bench.bus.forwarded"
    token: str
    payload: str


class EchoReturned(Event):
    routing_key: ClassVar[str] = "bench.bus.returned"
    token: str
    payload: str


def request(cmd: EchoRequest, uow: UnitOfWork) -> Deferred:
    assert uow.message is not None and uow.message.reply_to is not None
    token = str(uuid.uuid4())
    uow.session.execute(
        waiting.insert().values(
            token=token, reply_to=uow.message.reply_to, correlation_id=uow.message.correlation_id
        )
    )
    uow.emit(EchoForwarded(token=token, payload=cmd.payload))
    return DEFERRED


def forwarded(evt: EchoForwarded, uow: UnitOfWork) -> None:
    uow.emit(EchoReturned(token=evt.token, payload=evt.payload))


def returned(evt: EchoReturned, uow: UnitOfWork) -> None:
    row = uow.session.execute(select(waiting).where(waiting.c.token == evt.token)).one()
    uow.session.execute(delete(waiting).where(waiting.c.token == evt.token))
    uow.reply(row.reply_to, row.correlation_id, Reply.success({"token": evt.token}))


HOPS = {
    "a": Handlers(
        commands={EchoRequest: On(request, emits=(EchoForwarded,))},
        events={EchoReturned: On(returned)},
    ),
    "b": Handlers(events={EchoForwarded: On(forwarded, emits=(EchoReturned,))}),
}


def bus_hop(
    url: str, topology: Topology, role: str, data_dir: Path, ready: EventType, stop: EventType
) -> None:
    """One hop as a service runs it: consumer, worker threads, SQLite (WAL), the relay."""
    service = f"echo-bus-{role}"
    # At WARNING, as the services run in the benchmark: per-message debug lines cost time.
    configure_logging(service, "WARNING")
    engine = db.make_engine(f"sqlite:///{data_dir / f'echo-{role}.db'}")
    metadata.create_all(engine)
    sessions = db.session_factory(engine)
    bound = HOPS[role].bind({}, {})
    processor = Processor(
        bound.routes, lambda: UnitOfWork(sessions), store, topology.exchange, service=service
    )
    queues = tuple(QueueSpec(purpose, tuple(keys)) for purpose, keys in bound.queues.items())
    consumer = Consumer(
        ConsumerConfig(url, topology, service, queues),
        processor,
        RelayThread(OutboxRelay(store, sessions, service), url, service),
    )
    stopping = threading.Event()
    thread = threading.Thread(target=consumer.run, args=(stopping,), daemon=True)
    thread.start()
    relay = consumer.relay
    assert relay is not None
    if consumer.connected.wait(START_TIMEOUT_S) and relay.connected.wait(START_TIMEOUT_S):
        ready.set()
    stop.wait()
    stopping.set()
    thread.join(30)
    _delete_queues(url, topology, service, [spec.purpose for spec in queues])
    engine.dispose()


def _delete_queues(url: str, topology: Topology, service: str, purposes: list[str]) -> None:
    connection = connect(url, f"{service}-cleanup")
    channel = connection.channel()
    for purpose in purposes:
        queue = topology.queue(service, purpose)
        channel.queue_delete(queue)
        channel.queue_delete(topology.retry_queue(queue))
    channel.queue_delete(topology.dead_letter_queue(service))
    connection.close()


@contextmanager
def bus_echo_hops(url: str, topology: Topology, data_dir: Path) -> Iterator[None]:
    """Hops b and a, each in a process of its own, until the block ends."""
    spawn = multiprocessing.get_context("spawn")
    stop = spawn.Event()
    started = []
    try:
        for role in ("b", "a"):
            ready = spawn.Event()
            process = spawn.Process(
                target=bus_hop, args=(url, topology, role, data_dir, ready, stop), daemon=True
            )
            process.start()
            started.append(process)
            if not ready.wait(START_TIMEOUT_S):
                raise RuntimeError(f"bus echo hop {role} did not connect")
        yield
    finally:
        stop.set()
        for process in started:
            process.join(40)
