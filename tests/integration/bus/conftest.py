"""What the bus's integration tests share: the note service's database, a look into queues."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pika
import pytest
from pika.adapters.blocking_connection import BlockingChannel
from sqlalchemy.orm import Session, sessionmaker

from directdl.bus.topology import Topology
from directdl.runtime.db import make_engine, session_factory
from directdl_testing import note_service

Drain = Callable[[str], list[tuple[pika.BasicProperties, bytes]]]
Depth = Callable[[str], int]


@pytest.fixture
def sessions(tmp_path: Path) -> sessionmaker[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'notes.db'}")
    note_service.metadata.create_all(engine)
    return session_factory(engine)


@pytest.fixture
def admin_channel(amqp_url: str, topology: Topology) -> Iterator[BlockingChannel]:
    """A channel of the vhost's administrator, for the test's thread only."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    yield channel
    # `remove_topology` does not know the retry queue.
    channel.queue_delete(topology.retry_queue(topology.queue("test", "commands")))
    connection.close()


@pytest.fixture
def drain(admin_channel: BlockingChannel) -> Drain:
    """`drain(queue)`: take every message waiting in `queue`."""

    def take(queue: str) -> list[tuple[pika.BasicProperties, bytes]]:
        taken: list[tuple[pika.BasicProperties, bytes]] = []
        while True:
            method, props, body = admin_channel.basic_get(queue, auto_ack=True)
            if method is None:
                return taken
            taken.append((props, body))

    return take


@pytest.fixture
def depth(admin_channel: BlockingChannel) -> Depth:
    """`depth(queue)`: how many messages wait in `queue`."""

    def count(queue: str) -> int:
        return int(admin_channel.queue_declare(queue, passive=True).method.message_count)

    return count
