"""The dispatch table: dependencies injected by name, merges that refuse a message handled
twice, and work that publishes only what its entry lists."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from directdl.bus.delivery import Delivery, Verdict
from directdl.bus.dispatch import Every, Handlers, On, WiringError
from directdl.bus.processing import Processor
from directdl.runtime.db import session_factory
from directdl.runtime.uow import UnitOfWork
from directdl_testing import note_service
from directdl_testing.memory import memory_engine
from directdl_testing.note_service import AddNote, NoteAdded

pytestmark = pytest.mark.unit


def add_with_prefix(cmd: AddNote, uow: UnitOfWork, prefix: str) -> dict[str, str]:
    return {"text": prefix + cmd.text}


def announce(cmd: AddNote, uow: UnitOfWork) -> None:
    uow.emit(NoteAdded(text=cmd.text))


@pytest.fixture
def sessions() -> sessionmaker[Session]:
    return session_factory(memory_engine(note_service.metadata))


def deliver(table: Handlers, sessions: sessionmaker[Session]) -> Verdict:
    processor = Processor(
        table.bind({}, {}).routes, lambda: UnitOfWork(sessions), note_service.store, "directdl"
    )
    delivery = Delivery(routing_key=AddNote.routing_key, body=b'{"text": "hi"}', message_id="m")
    return processor.process(delivery).verdict


def test_dependencies_are_injected_by_parameter_name() -> None:
    route = Handlers(commands={AddNote: On(add_with_prefix)}).bind({"prefix": "> "}, {})
    handler = route.routes[AddNote.routing_key].handler
    assert handler(AddNote(text="hi"), None) == {"text": "> hi"}


def test_a_missing_dependency_stops_the_wiring_and_names_it() -> None:
    with pytest.raises(WiringError, match="needs prefix"):
        Handlers(commands={AddNote: On(add_with_prefix)}).bind({}, {})
    with pytest.raises(WiringError, match="every tick_interval"):
        Handlers(timers={"tick": Every("tick_interval", lambda uow: None)}).bind({}, {})


def test_a_message_handled_twice_is_refused_when_tables_merge() -> None:
    one = Handlers(commands={AddNote: On(announce)})
    with pytest.raises(WiringError, match=AddNote.routing_key):
        _ = one | Handlers(commands={AddNote: On(announce)})
    shared = Handlers(shared={"q": {AddNote: On(announce)}})
    with pytest.raises(WiringError, match=AddNote.routing_key):
        _ = shared | Handlers(shared={"q": {AddNote: On(announce)}})


def test_publishing_what_the_entry_does_not_list_fails_the_work(
    sessions: sessionmaker[Session],
) -> None:
    assert deliver(Handlers(commands={AddNote: On(announce)}), sessions) is Verdict.RETRY
    with sessions() as session:
        assert note_service.store.pending(session) == [], "nothing of the failed work is sent"
    listed = Handlers(commands={AddNote: On(announce, emits=(NoteAdded,))})
    assert deliver(listed, sessions) is Verdict.ACK


def test_the_roles_a_table_plays_come_from_its_entries() -> None:
    table = Handlers(
        commands={AddNote: On(announce, emits=(NoteAdded,))},
        background={"later": (NoteAdded,)},
    )
    assert table.consumes() == {AddNote}
    assert table.publishes() == {NoteAdded}
    assert table.emits_of(AddNote) == (NoteAdded,)
    assert table.routing_keys({}) == {"commands": {AddNote.routing_key}}
