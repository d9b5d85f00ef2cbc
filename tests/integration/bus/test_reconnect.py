"""A consumer outlives its broker: on a private node that the test stops and starts again."""

from __future__ import annotations

from pathlib import Path

import pytest

from directdl.bus.client import BusClient
from directdl.runtime.db import make_engine, session_factory
from directdl_testing import note_service
from directdl_testing.isolation import unique_topology
from directdl_testing.note_service import NoteService, running_consumer
from directdl_testing.private_broker import PrivateBroker
from directdl_testing.waiting import wait_until

pytestmark = pytest.mark.integration


def test_the_consumer_reconnects_redeclares_and_resumes(
    tmp_path: Path, private_broker: PrivateBroker
) -> None:
    broker = private_broker
    engine = make_engine(f"sqlite:///{tmp_path / 'notes.db'}")
    note_service.metadata.create_all(engine)
    sessions = session_factory(engine)
    topology = unique_topology()
    with running_consumer(
        broker.url, topology, NoteService(), sessions, max_backoff_seconds=1.0
    ) as consumer:
        with BusClient(broker.url, topology) as client:
            assert client.call(note_service.AddNote(text="before")).ok

        broker.stop_app()
        wait_until(lambda: not consumer.connected.is_set(), timeout=15, what="the disconnect")
        broker.start_app()
        wait_until(consumer.connected.is_set, timeout=30, what="the reconnect")

        with BusClient(broker.url, topology) as client:
            assert client.call(note_service.AddNote(text="after"), timeout=15).ok
        assert consumer.connections == 2
    assert note_service.count_notes(sessions) == 2
