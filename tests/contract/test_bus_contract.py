"""One contract, two buses: the in-memory bus must behave as RabbitMQ does for handlers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest

from directdl.bus.client import BusClient
from directdl.bus.memory import InMemoryBus
from directdl.bus.topology import Topology, topic_matches
from directdl.contracts.base import Command
from directdl.contracts.reply import Reply
from directdl.runtime.db import make_engine, session_factory
from directdl.runtime.uow import UnitOfWork
from directdl_testing import note_service
from directdl_testing.memory import memory_engine
from directdl_testing.note_service import running_consumer
from directdl_testing.recorder import MessageRecorder


class Bus(Protocol):
    def call(self, command: Command, message_id: str | None = None) -> Reply: ...
    def call_raw(
        self, routing_key: str, body: bytes, *, message_id: str | None = None
    ) -> Reply: ...
    def published(self, pattern: str) -> list[dict[str, Any]]: ...


@dataclass
class RabbitBus:
    """The same calls over a real broker: a consumer thread, a client, a recorder."""

    client: BusClient
    recorder: MessageRecorder

    def call(self, command: Command, message_id: str | None = None) -> Reply:
        return self.client.call(command, timeout=10, message_id=message_id)

    def call_raw(self, routing_key: str, body: bytes, *, message_id: str | None = None) -> Reply:
        return self.client.call_raw(routing_key, body, timeout=10, message_id=message_id)

    def published(self, pattern: str) -> list[dict[str, Any]]:
        self.recorder.poll(0.3)  # events are relayed just after the reply; let them land
        return [m.body for m in self.recorder.messages if topic_matches(pattern, m.routing_key)]


@pytest.fixture(
    params=[
        pytest.param("memory", marks=pytest.mark.unit),
        pytest.param("rabbitmq", marks=pytest.mark.integration),
    ]
)
def bus(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Bus]:
    handlers = note_service.NoteService()
    if request.param == "memory":
        sessions = session_factory(memory_engine(note_service.metadata))
        uow = lambda: UnitOfWork(sessions)  # noqa: E731
        yield InMemoryBus(handlers.routes(), uow, note_service.store, sessions)
        return
    amqp_url: str = request.getfixturevalue("amqp_url")
    topology: Topology = request.getfixturevalue("topology")
    engine = make_engine(f"sqlite:///{tmp_path / 'notes.db'}")
    note_service.metadata.create_all(engine)
    with (
        running_consumer(amqp_url, topology, handlers, session_factory(engine)),
        BusClient(amqp_url, topology) as client,
        MessageRecorder(amqp_url, topology, "test.note.added") as recorder,
    ):
        yield RabbitBus(client, recorder)


def test_success_replies_with_the_result_and_emits_the_event(bus: Bus) -> None:
    reply = bus.call(note_service.AddNote(text="hello"))

    assert reply.model_dump(exclude_none=True) == {"ok": True, "result": {"text": "hello"}}
    assert bus.published("test.note.added") == [{"text": "hello"}]


def test_an_expected_error_is_answered_with_its_code_and_changes_nothing(bus: Bus) -> None:
    bus.call(note_service.AddNote(text="hello"))

    reply = bus.call(note_service.AddNote(text="hello"))

    assert reply.error is not None
    assert (reply.error.code, reply.error.details) == ("CONFLICT", {"text": "hello"})
    assert len(bus.published("test.note.added")) == 1


def test_a_schema_error_names_each_bad_field(bus: Bus) -> None:
    reply = bus.call_raw("test.note.add", json.dumps({"text": 5, "colour": "red"}).encode())

    assert reply.error is not None and reply.error.code == "INVALID_MESSAGE"
    fields = {e["field"]: e["input"] for e in reply.error.details["errors"]}
    assert fields == {"text": 5, "colour": "red"}


def test_the_same_message_id_has_one_effect_and_the_same_answer(bus: Bus) -> None:
    first = bus.call(note_service.AddNote(text="once"), message_id="fixed")
    second = bus.call(note_service.AddNote(text="once"), message_id="fixed")

    assert first == second
    assert first.ok
    assert len(bus.published("test.note.added")) == 1
