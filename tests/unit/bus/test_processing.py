"""The Processor's edge cases: what it answers, what it stores, and what it asks the consumer."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from directdl.bus.delivery import Delivery, Verdict
from directdl.bus.dispatch import Handlers, On
from directdl.bus.processing import Processor
from directdl.bus.store import Outgoing, utcnow
from directdl.runtime.db import session_factory
from directdl.runtime.uow import UnitOfWork
from directdl_testing import note_service
from directdl_testing.memory import memory_engine

pytestmark = pytest.mark.unit


@pytest.fixture
def sessions() -> sessionmaker[Session]:
    return session_factory(memory_engine(note_service.metadata))


@pytest.fixture
def processor(sessions: sessionmaker[Session]) -> Processor:
    routes = note_service.NoteService().routes()
    return Processor(routes, lambda: UnitOfWork(sessions), note_service.store, "directdl")


def delivery(
    routing_key: str = "test.note.add", body: bytes = b'{"text": "hi"}', **kw: object
) -> Delivery:
    fields: dict[str, object] = {"message_id": "m-1", "reply_to": "caller", "correlation_id": "c-1"}
    return Delivery(routing_key=routing_key, body=body, **(fields | kw))  # type: ignore[arg-type]


def outbox(sessions: sessionmaker[Session]) -> list[Outgoing]:
    with sessions() as session:
        return note_service.store.pending(session)


def replies(sessions: sessionmaker[Session]) -> list[dict[str, object]]:
    return [json.loads(m.body) for m in outbox(sessions) if m.exchange == ""]


@pytest.mark.parametrize(
    ("d", "code", "named"),
    [
        (delivery(message_id=None), "INVALID_MESSAGE", "message_id"),
        (delivery(content_type="text/plain"), "INVALID_MESSAGE", "text/plain"),
        (delivery(routing_key="test.unknown"), "UNSUPPORTED", "test.unknown"),
        (delivery(body=b""), "INVALID_MESSAGE", "test.note.add"),
        (delivery(body=b"[1, 2]"), "INVALID_MESSAGE", "[1, 2]"),
    ],
)
def test_bad_deliveries_are_answered_and_dead_lettered(
    processor: Processor, sessions: sessionmaker[Session], d: Delivery, code: str, named: str
) -> None:
    outcome = processor.process(d)

    assert outcome.verdict is Verdict.DEAD_LETTER
    [reply] = replies(sessions)
    assert reply["ok"] is False
    assert reply["error"]["code"] == code  # type: ignore[index]
    assert named in reply["error"]["message"]  # type: ignore[index]


def test_a_refused_delivery_that_comes_back_is_answered_once_under_one_id(
    processor: Processor, sessions: sessionmaker[Session]
) -> None:
    # A refusal is not recorded in the inbox; its answer's id, derived from the delivery, is
    # what keeps a redelivery (or a replayed dead letter) from being answered again.
    for _ in range(2):
        processor.process(delivery(body=b"{"))
    [answer] = [m for m in outbox(sessions) if m.exchange == ""]
    processor.process(delivery(body=b"{", correlation_id="c-2"))  # another request: answered
    ids = [m.message_id for m in outbox(sessions) if m.exchange == ""]
    assert len(ids) == 2 and ids[0] == answer.message_id != ids[1]


def test_without_reply_to_nothing_is_answered(
    processor: Processor, sessions: sessionmaker[Session]
) -> None:
    assert processor.process(delivery(body=b"{", reply_to=None)).verdict is Verdict.DEAD_LETTER
    assert outbox(sessions) == []


def test_an_unexpected_exception_asks_for_a_retry_and_stores_nothing(
    processor: Processor, sessions: sessionmaker[Session]
) -> None:
    outcome = processor.process(delivery("test.explode", b'{"reason": "flaky"}'))

    assert outcome.verdict is Verdict.RETRY
    assert "RuntimeError: flaky" in outcome.error
    assert outbox(sessions) == []


def test_giving_up_answers_internal_and_leaves_the_message_replayable(
    processor: Processor, sessions: sessionmaker[Session]
) -> None:
    d = delivery("test.explode", b"{}", headers={"x-delivery-count": 2})
    processor.give_up(d, "RuntimeError: boom")

    [reply] = replies(sessions)
    assert reply["error"]["code"] == "INTERNAL"  # type: ignore[index]
    assert "after 3 attempts" in reply["error"]["message"]  # type: ignore[index]
    with sessions() as session:
        assert note_service.store.find_processed(session, "m-1") is None


def test_a_redelivery_is_not_answered_twice_but_a_new_request_is(
    processor: Processor, sessions: sessionmaker[Session]
) -> None:
    processor.process(delivery())
    processor.process(delivery())  # the broker redelivers the same message
    processor.process(delivery(correlation_id="c-2"))  # a client re-sends with the same id

    answered = [
        (m.correlation_id, json.loads(m.body)) for m in outbox(sessions) if m.exchange == ""
    ]
    assert [c for c, _ in answered] == ["c-1", "c-2"]
    assert answered[0][1] == answered[1][1]
    assert note_service.count_notes(sessions) == 1


def test_events_carry_the_command_as_their_correlation(
    processor: Processor, sessions: sessionmaker[Session]
) -> None:
    processor.process(delivery())
    [event] = [m for m in outbox(sessions) if m.exchange]
    assert (event.exchange, event.routing_key, event.correlation_id) == (
        "directdl",
        "test.note.added",
        "c-1",
    )


def test_pruning_forgets_only_what_is_old_enough(
    processor: Processor, sessions: sessionmaker[Session]
) -> None:
    processor.process(delivery())
    with sessions() as session:
        for message in note_service.store.pending(session):
            assert message.id is not None
            note_service.store.mark_sent(session, message.id)
        session.commit()
        long_ago = utcnow() - timedelta(days=30)
        assert note_service.store.prune(session, long_ago, long_ago) == 0
        soon = utcnow() + timedelta(seconds=1)
        assert note_service.store.prune(session, soon, soon) == 3  # reply, event, inbox row
        session.commit()
        assert note_service.store.find_processed(session, "m-1") is None


def test_an_idempotent_route_leaves_no_inbox_row_and_runs_each_time(
    sessions: sessionmaker[Session],
) -> None:
    runs: list[str] = []
    table = Handlers(
        commands={note_service.AddNote: On(lambda cmd, uow: runs.append(cmd.text), idempotent=True)}
    )
    processor = Processor(
        table.bind({}, {}).routes, lambda: UnitOfWork(sessions), note_service.store, "directdl"
    )

    processor.process(delivery())
    processor.process(delivery())

    assert runs == ["hi", "hi"]
    with sessions() as session:
        assert note_service.store.find_processed(session, "m-1") is None
    assert len(replies(sessions)) == 2  # each delivery with reply_to is still answered


def test_the_relay_is_woken_only_by_a_commit_that_put_something_in_the_outbox(
    sessions: sessionmaker[Session],
) -> None:
    def quiet(cmd: note_service.AddNote, uow: UnitOfWork) -> None:
        """A heartbeat's kind of work: an upsert that publishes nothing."""

    table = Handlers(events={note_service.AddNote: On(quiet, idempotent=True)})
    woken: list[str] = []
    processor = Processor(
        table.bind({}, {}).routes,
        lambda: UnitOfWork(sessions),
        note_service.store,
        "directdl",
        on_commit=lambda: woken.append("relay"),
    )
    assert processor.process(delivery(reply_to=None)).verdict is Verdict.ACK
    assert woken == []
    assert processor.process(delivery(message_id="m-2")).verdict is Verdict.ACK
    assert woken == ["relay"], "its reply is in the outbox"
