"""A batched queue on the real broker: many deliveries per transaction, acked after it."""

from __future__ import annotations

import threading
from typing import ClassVar

import pytest
from pika.adapters.blocking_connection import BlockingChannel
from sqlalchemy.orm import Session, sessionmaker

from directdl.bus.consumer import Consumer, ConsumerConfig, QueueSpec
from directdl.bus.dispatch import Handlers, OnBatch
from directdl.bus.processing import Processor
from directdl.bus.publisher import properties
from directdl.bus.topology import Topology
from directdl.contracts.base import Event
from directdl.runtime.uow import UnitOfWork
from directdl_testing import note_service
from directdl_testing.note_service import count_notes, notes
from directdl_testing.waiting import wait_until

from .conftest import Depth

pytestmark = pytest.mark.integration

MESSAGES = 500


class Noted(Event):
    routing_key: ClassVar[str] = "test.noted"
    text: str


class Notes:
    def __init__(self) -> None:
        self.commits: list[int] = []  # how many messages each transaction committed

    def noted(self, messages: list[Noted], uow: UnitOfWork) -> None:
        for message in messages:
            if message.text == "poison":
                raise RuntimeError("a poison message")
            uow.session.execute(notes.insert().values(text=message.text))
        uow.after_commit(lambda: self.commits.append(len(messages)))


def test_deliveries_are_handled_in_batches_and_acked_after_their_commit(
    amqp_url: str,
    topology: Topology,
    sessions: sessionmaker[Session],
    admin_channel: BlockingChannel,
    depth: Depth,
) -> None:
    handlers = Notes()
    bound = Handlers(batched={"seen": {Noted: OnBatch(handlers.noted)}}).bind({}, {})
    processor = Processor(
        bound.routes,
        lambda: UnitOfWork(sessions),
        note_service.store,
        topology.exchange,
        batch_routes=bound.batch_routes,
    )
    spec = QueueSpec("seen", tuple(bound.batched["seen"]), batched=True)
    # One attempt: the poison message is dead-lettered at once instead of waiting to retry.
    consumer = Consumer(
        ConsumerConfig(amqp_url, topology, "test", (spec,), max_attempts=1), processor
    )
    queue = topology.queue("test", "seen")
    stop = threading.Event()
    thread = threading.Thread(target=consumer.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert consumer.connected.wait(10), "the consumer did not connect"
        publish(admin_channel, topology, [f"n-{n}" for n in range(MESSAGES)])
        wait_until(lambda: count_notes(sessions) == MESSAGES, timeout=20, what="the notes")
        assert sum(handlers.commits) == MESSAGES
        assert len(handlers.commits) < MESSAGES // 10, handlers.commits
        wait_until(lambda: depth(queue) == 0, what="every delivery acked")

        # A handler that raises on one message: the others still commit, one by one.
        handlers.commits.clear()
        publish(admin_channel, topology, ["a", "b", "poison", "c"])
        dead = topology.dead_letter_queue("test")
        wait_until(lambda: depth(dead) == 1, what="the poison message dead-lettered")
        assert count_notes(sessions) == MESSAGES + 3
        assert sum(handlers.commits) == 3
    finally:
        stop.set()
        thread.join(30)
    assert depth(queue) == 0, "every delivery was acked"
    admin_channel.queue_delete(queue)
    admin_channel.queue_delete(topology.retry_queue(queue))
    admin_channel.queue_delete(dead)


def publish(channel: BlockingChannel, topology: Topology, texts: list[str]) -> None:
    for text in texts:
        channel.basic_publish(
            topology.exchange,
            Noted.routing_key,
            Noted(text=text).model_dump_json().encode(),
            properties(f"m-{text}", Noted.routing_key, app_id="test"),
        )
