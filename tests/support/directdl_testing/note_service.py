"""A minimal service for testing the bus itself: notes stored, events emitted, failures on cue."""

from __future__ import annotations

import threading
import time
from typing import Any, ClassVar

from sqlalchemy import Column, Integer, MetaData, String, Table, func, select
from sqlalchemy.orm import Session, sessionmaker

from directdl.bus.consumer import Consumer, ConsumerConfig, QueueSpec
from directdl.bus.dispatch import Handlers, On
from directdl.bus.processing import Processor, Route
from directdl.bus.relay import OutboxRelay
from directdl.bus.relay_thread import RelayThread
from directdl.bus.store import MessageStore
from directdl.bus.topology import Topology
from directdl.contracts.base import Command, Event
from directdl.contracts.errors import Conflict
from directdl.runtime.uow import UnitOfWork

metadata = MetaData()
notes = Table(
    "notes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("text", String(200), nullable=False, unique=True),
)
store = MessageStore(metadata)


class AddNote(Command):
    routing_key: ClassVar[str] = "test.note.add"
    text: str
    seconds: float = 0.0  # how long the handler works before committing


class Explode(Command):
    routing_key: ClassVar[str] = "test.explode"
    reason: str = "boom"


class NoteAdded(Event):
    routing_key: ClassVar[str] = "test.note.added"
    text: str


class NoteService:
    """Handlers with a memory of how often they ran, for asserting on retries."""

    def __init__(self) -> None:
        self.explosions = 0
        self._lock = threading.Lock()

    def add_note(self, cmd: AddNote, uow: UnitOfWork) -> dict[str, object]:
        time.sleep(cmd.seconds)
        taken = uow.session.scalar(select(func.count()).where(notes.c.text == cmd.text))
        if taken:
            raise Conflict(f"note {cmd.text!r} exists", details={"text": cmd.text})
        uow.session.execute(notes.insert().values(text=cmd.text))
        uow.emit(NoteAdded(text=cmd.text))
        return {"text": cmd.text}

    def explode(self, cmd: Explode, uow: UnitOfWork) -> None:
        with self._lock:
            self.explosions += 1
        raise RuntimeError(cmd.reason)

    def handlers(self) -> Handlers:
        return Handlers(
            commands={AddNote: On(self.add_note, emits=(NoteAdded,)), Explode: On(self.explode)}
        )

    def routes(self) -> dict[str, Route]:
        return self.handlers().bind({}, {}).routes


def count_notes(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(notes)) or 0


class running_consumer:
    def __init__(
        self,
        url: str,
        topology: Topology,
        handlers: NoteService,
        sessions: sessionmaker[Session],
        **config: Any,
    ) -> None:
        processor = Processor(
            handlers.routes(), lambda: UnitOfWork(sessions), store, topology.exchange
        )
        self.consumer = Consumer(
            ConsumerConfig(
                url, topology, "test", (QueueSpec("commands", tuple(handlers.routes())),), **config
            ),
            processor,
            RelayThread(OutboxRelay(store, sessions, "test"), url, "test"),
        )
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.consumer.run, args=(self.stop,), daemon=True)

    def __enter__(self) -> Consumer:
        self.thread.start()
        assert self.consumer.connected.wait(10), "the consumer did not connect"
        return self.consumer

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)
