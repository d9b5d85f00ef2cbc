"""Batched routes: grouped by routing key, one commit, and a fallback that isolates a poison
message; refusals settled one by one, as for any delivery."""

from __future__ import annotations

from typing import ClassVar

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from directdl.bus.delivery import Delivery, Verdict
from directdl.bus.dispatch import Handlers, On, OnBatch, WiringError
from directdl.bus.memory import InMemoryBus
from directdl.bus.processing import Processor
from directdl.contracts.base import Event
from directdl.contracts.senders import THE_HOST
from directdl.runtime.db import session_factory
from directdl.runtime.uow import UnitOfWork
from directdl_testing import note_service
from directdl_testing.memory import memory_engine
from directdl_testing.note_service import AddNote, NoteAdded, notes

pytestmark = pytest.mark.unit


class Noted(Event):
    routing_key: ClassVar[str] = "test.noted"
    text: str


class Beat(Event):
    routing_key: ClassVar[str] = "test.beat"
    sent_by: ClassVar = THE_HOST
    host_id: str


class Recorder:
    """Batch handlers that insert notes, remembering each call's batch; `poison` raises."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.commits: list[int] = []

    def noted(self, messages: list[Noted], uow: UnitOfWork) -> None:
        self.calls.append([m.text for m in messages])
        for message in messages:
            if message.text == "poison":
                raise RuntimeError("poison")
            uow.session.execute(notes.insert().values(text=message.text))
            uow.emit(NoteAdded(text=message.text))
        uow.after_commit(lambda: self.commits.append(len(messages)))

    def beat(self, messages: list[Beat], uow: UnitOfWork) -> None:
        self.calls.append([m.host_id for m in messages])
        uow.after_commit(lambda: self.commits.append(len(messages)))

    def handlers(self) -> Handlers:
        return Handlers(
            batched={
                "seen": {
                    Noted: OnBatch(self.noted, emits=(NoteAdded,)),
                    Beat: OnBatch(self.beat),
                }
            }
        )


@pytest.fixture
def sessions() -> sessionmaker[Session]:
    return session_factory(memory_engine(note_service.metadata))


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def processor(recorder: Recorder, sessions: sessionmaker[Session]) -> Processor:
    bound = recorder.handlers().bind({}, {})
    return Processor(
        bound.routes,
        lambda: UnitOfWork(sessions),
        note_service.store,
        "directdl",
        batch_routes=bound.batch_routes,
    )


def noted(text: str, **fields: object) -> Delivery:
    return Delivery(
        Noted.routing_key, Noted(text=text).model_dump_json().encode(), f"m-{text}", **fields
    )  # type: ignore[arg-type]


def beat(host: str, user: str | None = None) -> Delivery:
    body = Beat(host_id=host).model_dump_json().encode()
    return Delivery(Beat.routing_key, body, f"b-{host}", user_id=user or f"host-agent-{host}")


def count(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(notes)) or 0


def test_a_batch_is_handed_over_in_runs_of_one_key_in_arrival_order_and_committed_once(
    processor: Processor, recorder: Recorder, sessions: sessionmaker[Session]
) -> None:
    woken: list[str] = []
    processor.on_commit = lambda: woken.append("relay")
    deliveries = [noted("a"), noted("b"), beat("h1"), beat("h2"), noted("c")]
    outcomes = processor.process_batch(deliveries)
    assert [o.verdict for o in outcomes] == [Verdict.ACK] * 5
    # Never reordered: what a host sent second is applied second.
    assert recorder.calls == [["a", "b"], ["h1", "h2"], ["c"]]
    assert recorder.commits == [2, 2, 1], "after_commit runs once the one transaction commits"
    assert count(sessions) == 3
    assert woken == ["relay"], "one commit, one wake-up of the relay"
    with sessions() as session:
        assert len(note_service.store.pending(session)) == 3  # the emitted NoteAdded


def test_a_poison_message_fails_alone_and_the_others_commit(
    processor: Processor, recorder: Recorder, sessions: sessionmaker[Session]
) -> None:
    outcomes = processor.process_batch([noted("a"), noted("poison"), noted("b")])
    assert [o.verdict for o in outcomes] == [Verdict.ACK, Verdict.RETRY, Verdict.ACK]
    assert "poison" in outcomes[1].error
    assert recorder.calls == [["a", "poison", "b"], ["a"], ["poison"], ["b"]]
    assert count(sessions) == 2


def test_invalid_and_forged_deliveries_are_refused_one_by_one_and_never_handled(
    processor: Processor, recorder: Recorder, sessions: sessionmaker[Session]
) -> None:
    broken = Delivery(Noted.routing_key, b"{", "m-broken")
    forged = beat("h1", user="host-agent-h2")
    outcomes = processor.process_batch([noted("a"), broken, forged, beat("h3")])
    assert [o.verdict for o in outcomes] == [
        Verdict.ACK,
        Verdict.DEAD_LETTER,
        Verdict.ACK,  # acked and dropped, as any forgery
        Verdict.ACK,
    ]
    assert recorder.calls == [["a"], ["h3"]]


def test_publishing_what_the_batch_entry_does_not_list_fails_the_work(
    sessions: sessionmaker[Session],
) -> None:
    def undeclared(messages: list[Noted], uow: UnitOfWork) -> None:
        uow.emit(NoteAdded(text=messages[0].text))

    bound = Handlers(batched={"seen": {Noted: OnBatch(undeclared)}}).bind({}, {})
    processor = Processor(
        bound.routes,
        lambda: UnitOfWork(sessions),
        note_service.store,
        "directdl",
        batch_routes=bound.batch_routes,
    )
    [outcome] = processor.process_batch([noted("a")])
    assert outcome.verdict is Verdict.RETRY
    assert "NoteAdded" in outcome.error
    with sessions() as session:
        assert note_service.store.pending(session) == []


def test_a_batched_table_counts_in_every_role_the_table_plays(recorder: Recorder) -> None:
    table = recorder.handlers() | Handlers(commands={AddNote: On(lambda c, u: None)})
    assert table.consumes() == {Noted, Beat, AddNote}
    assert table.publishes() == {NoteAdded}
    assert table.emits_of(Noted) == (NoteAdded,)
    assert table.routing_keys({}) == {
        "commands": {AddNote.routing_key},
        "seen": {Noted.routing_key, Beat.routing_key},
    }
    assert set(table.queues) == {"commands", "seen"}
    with pytest.raises(WiringError, match=Noted.routing_key):
        _ = table | Handlers(batched={"seen": {Noted: OnBatch(recorder.noted)}})
    with pytest.raises(WiringError, match="events"):
        Handlers(batched={"events": {Noted: OnBatch(recorder.noted)}})


def test_the_memory_bus_hands_one_message_or_several_to_the_batch_handler(
    recorder: Recorder, sessions: sessionmaker[Session]
) -> None:
    bus = InMemoryBus.serving(
        recorder.handlers(), {}, lambda: UnitOfWork(sessions), note_service.store, sessions
    )
    bus.submit(Noted(text="one"))
    outcomes = bus.submit_many([Noted(text="two"), Beat(host_id="h1"), Noted(text="three")])
    assert [o.verdict for o in outcomes] == [Verdict.ACK] * 3
    assert recorder.calls == [["one"], ["two"], ["h1"], ["three"]]
    assert [e["text"] for e in bus.published("test.note.added")] == ["one", "two", "three"]
