"""A failed message waits out its back-off in the broker, not on a worker, and is counted."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pika
import pytest
import structlog
from sqlalchemy.orm import Session, sessionmaker

from directdl.backoff import Backoff
from directdl.bus.client import BusClient
from directdl.bus.connection import broker_user
from directdl.bus.topology import Topology
from directdl.runtime.db import make_engine, session_factory
from directdl.runtime.uow import UnitOfWork
from directdl_testing import note_service
from directdl_testing.isolation import unique_topology
from directdl_testing.note_service import AddNote, Explode, NoteService, running_consumer
from directdl_testing.private_broker import PrivateBroker
from directdl_testing.waiting import wait_until

pytestmark = pytest.mark.integration

REPLY_TO = "amq.rabbitmq.reply-to"
Drain = Callable[[str], list[tuple[pika.BasicProperties, bytes]]]


class NoJitter(Backoff):
    """The longest wait every time, so that a test knows when each retry is due."""

    def delay(self, attempt: int) -> float:
        return self.ceiling(attempt)


@dataclass(frozen=True)
class Call:
    text: str
    started: float
    ended: float
    failed: bool


class FlakyNotes(NoteService):
    """`add_note` fails the first `failures[text]` times for that text; each call recorded."""

    def __init__(self, failures: dict[str, int]) -> None:
        super().__init__()
        self.failures = dict(failures)
        self.calls: list[Call] = []
        self._calls_lock = threading.Lock()

    def add_note(self, cmd: AddNote, uow: UnitOfWork) -> dict[str, object]:
        started = time.monotonic()
        failing = self.failures.get(cmd.text, 0) > 0
        try:
            if failing:
                self.failures[cmd.text] -= 1
                raise RuntimeError(f"{cmd.text} is not ready")
            return super().add_note(cmd, uow)
        finally:
            with self._calls_lock:
                self.calls.append(Call(cmd.text, started, time.monotonic(), failing))


def test_a_retry_waits_in_the_broker_while_the_only_worker_handles_the_next_message(
    amqp_url: str,
    topology: Topology,
    client: BusClient,
    sessions: sessionmaker[Session],
    depth: Callable[[str], int],
) -> None:
    handlers = FlakyNotes({"flaky": 2})
    retry_queue = topology.retry_queue(topology.queue("test", "commands"))
    backoff = NoJitter(base=1.5, cap=10.0)  # the retries are due 1.5 s, then 3 s, after
    with (
        running_consumer(amqp_url, topology, handlers, sessions, workers=1, retry_backoff=backoff),
        structlog.testing.capture_logs() as logs,
    ):
        for text in ("flaky", "steady"):
            body = AddNote(text=text).model_dump_json().encode()
            client.publish("test.note.add", body, reply_to=REPLY_TO, correlation_id=text)
        assert client.wait_reply("steady", timeout=10).ok
        # Answered, while the failed message waits in its retry queue and on no worker.
        assert depth(retry_queue) == 1
        assert [(c.text, c.failed) for c in handlers.calls] == [("flaky", True), ("steady", False)]
        assert client.wait_reply("flaky", timeout=20).ok

    flaky1, steady, flaky2, flaky3 = handlers.calls
    assert [(c.text, c.failed) for c in (flaky2, flaky3)] == [("flaky", True), ("flaky", False)]
    # The single worker took the next message at once, not after the back-off...
    assert steady.started - flaky1.ended < backoff.ceiling(1) / 2
    # ...and the broker handed the failed one back when each back-off was over.
    assert flaky2.started - flaky1.ended >= backoff.ceiling(1)
    assert flaky3.started - flaky2.ended >= backoff.ceiling(2)
    scheduled = [e for e in logs if e["event"] == "message.retry_scheduled"]
    assert [(e["attempt"], e["retry_in_s"]) for e in scheduled] == [(2, 1.5), (3, 3.0)]
    assert note_service.count_notes(sessions) == 2
    assert depth(retry_queue) == 0


def test_the_attempts_run_out_into_the_dead_letters_and_a_replay_starts_over(
    amqp_url: str,
    topology: Topology,
    client_as: Callable[[str], BusClient],
    sessions: sessionmaker[Session],
    drain: Drain,
    depth: Callable[[str], int],
) -> None:
    handlers = NoteService()
    dead = topology.dead_letter_queue("test")
    commands = topology.queue("test", "commands")
    consumer_user = broker_user(amqp_url)
    with running_consumer(
        amqp_url, topology, handlers, sessions, max_attempts=3, retry_backoff=NoJitter(0.2, 1.0)
    ):
        # Sent by another broker user than the consumer's, which republishes the retries.
        sender = client_as("certificate")
        sender.publish("test.explode", Explode(reason="disk on fire").model_dump_json().encode())
        wait_until(lambda: depth(dead) == 1, timeout=15, what="the dead letter")
        assert handlers.explosions == 3
        [(props, body)] = drain(dead)
        assert props.headers["x-directdl-attempts"] == 3
        assert props.headers["x-directdl-original-routing-key"] == "test.explode"
        # The copy is the consumer's to send; the sender it stands for is kept across retries.
        assert props.user_id == consumer_user
        assert props.headers["x-directdl-original-user-id"] == "certificate"
        assert "x-directdl-attempt" not in props.headers

        # A replay: the dead letter, moved back to its queue as it is.
        move_to(amqp_url, commands, props, body)
        wait_until(lambda: depth(dead) == 1, timeout=15, what="the replay's dead letter")
        assert handlers.explosions == 6
        [(again, _)] = drain(dead)
        assert again.headers["x-directdl-attempts"] == 3
        assert again.headers["x-directdl-original-user-id"] == "certificate"


def test_a_waiting_retry_outlives_a_broker_restart_and_counts_on(
    tmp_path: Path, private_broker: PrivateBroker
) -> None:
    broker = private_broker
    engine = make_engine(f"sqlite:///{tmp_path / 'notes.db'}")
    note_service.metadata.create_all(engine)
    sessions = session_factory(engine)
    topology = unique_topology()
    handlers = NoteService()
    retry = topology.retry_queue(topology.queue("test", "commands"))
    dead = topology.dead_letter_queue("test")
    with running_consumer(
        broker.url,
        topology,
        handlers,
        sessions,
        max_attempts=3,
        max_backoff_seconds=1.0,
        retry_backoff=NoJitter(base=3.0, cap=3.0),
    ) as consumer:
        with BusClient(broker.url, topology) as client:
            client.publish("test.explode", Explode(reason="restart").model_dump_json().encode())
        wait_until(lambda: depth_on(broker.url, retry) == 1, what="the first retry to wait")
        assert handlers.explosions == 1

        broker.stop_app()
        wait_until(lambda: not consumer.connected.is_set(), timeout=15, what="the disconnect")
        broker.start_app()
        wait_until(consumer.connected.is_set, timeout=30, what="the reconnect")

        wait_until(lambda: depth_on(broker.url, dead) == 1, timeout=30, what="the dead letter")
        # Two retries after the first attempt, one of them across the restart; no more.
        assert handlers.explosions == 3
        [(props, _)] = drain_on(broker.url, dead)
        assert props.headers["x-directdl-attempts"] == 3


def depth_on(url: str, queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        return int(connection.channel().queue_declare(queue, passive=True).method.message_count)
    finally:
        connection.close()


def drain_on(url: str, queue: str) -> list[tuple[pika.BasicProperties, bytes]]:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        taken = []
        while (got := channel.basic_get(queue, auto_ack=True))[0] is not None:
            taken.append((got[1], got[2]))
        return taken
    finally:
        connection.close()


def move_to(url: str, queue: str, props: pika.BasicProperties, body: bytes) -> None:
    """Publish a message, properties and all, straight to `queue`, as a shovel would."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish("", queue, body, props, mandatory=True)
    finally:
        connection.close()
