"""One-at-a-time routes grouped into one transaction: the same effects as one by one, with
one commit; anything unusual in a group and each delivery is processed alone."""

from __future__ import annotations

import json
from concurrent.futures import Future

import pytest
from sqlalchemy.orm import Session, sessionmaker

from directdl.bus.delivery import Delivery, Verdict
from directdl.bus.groups import GROUP_MAX, Grouper
from directdl.bus.processing import SLOW_HANDLER_SECONDS, Processor
from directdl.bus.settle import Held
from directdl.runtime.db import session_factory
from directdl.runtime.uow import UnitOfWork
from directdl_testing import note_service
from directdl_testing.memory import memory_engine
from directdl_testing.note_service import AddNote, Explode, NoteService, count_notes

pytestmark = pytest.mark.unit


class CountingUnitOfWork(UnitOfWork):
    commits = 0

    def commit(self) -> None:
        super().commit()
        CountingUnitOfWork.commits += 1


@pytest.fixture
def sessions() -> sessionmaker[Session]:
    CountingUnitOfWork.commits = 0
    return session_factory(memory_engine(note_service.metadata))


@pytest.fixture
def processor(sessions: sessionmaker[Session]) -> Processor:
    return Processor(
        NoteService().routes(),
        lambda: CountingUnitOfWork(sessions),
        note_service.store,
        "directdl",
    )


def add(text: str, message_id: str | None = None) -> Delivery:
    body = AddNote(text=text).model_dump_json().encode()
    return Delivery(
        AddNote.routing_key, body, message_id or f"m-{text}", reply_to="caller", user_id="cli"
    )


def replies(sessions: sessionmaker[Session]) -> list[dict[str, object]]:
    with sessions() as session:
        pending = note_service.store.pending(session)
    return [json.loads(row.body) for row in pending if row.exchange == ""]


def test_a_group_commits_once_with_every_effect_and_reply(
    processor: Processor, sessions: sessionmaker[Session]
) -> None:
    outcomes = processor.process_group([add("a"), add("b"), add("c")])
    assert [o.verdict for o in outcomes] == [Verdict.ACK] * 3
    assert CountingUnitOfWork.commits == 1
    assert count_notes(sessions) == 3
    answered = replies(sessions)
    assert [r["result"]["text"] for r in answered] == ["a", "b", "c"]  # type: ignore[index]


def test_a_refusal_in_a_group_is_answered_alone_and_the_others_still_commit(
    processor: Processor, sessions: sessionmaker[Session]
) -> None:
    # The second "a" is a conflict: the group is rolled back and each processed alone.
    outcomes = processor.process_group([add("a"), add("a", "m-again"), add("b")])
    assert [o.verdict for o in outcomes] == [Verdict.ACK] * 3
    assert count_notes(sessions) == 2
    answered = replies(sessions)
    assert [r["ok"] for r in answered] == [True, False, True]
    assert CountingUnitOfWork.commits == 3, "one by one, after the group was rolled back"


def test_a_failing_handler_fails_alone(
    processor: Processor, sessions: sessionmaker[Session]
) -> None:
    boom = Delivery(
        Explode.routing_key, Explode().model_dump_json().encode(), "m-boom", user_id="cli"
    )
    outcomes = processor.process_group([add("a"), boom, add("b")])
    assert [o.verdict for o in outcomes] == [Verdict.ACK, Verdict.RETRY, Verdict.ACK]
    assert count_notes(sessions) == 2


def test_a_duplicate_in_a_group_is_answered_once_from_the_inbox(
    processor: Processor, sessions: sessionmaker[Session]
) -> None:
    processor.process_group([add("a"), add("b")])
    outcomes = processor.process_group([add("a"), add("c")])  # "a" redelivered
    assert [o.verdict for o in outcomes] == [Verdict.ACK] * 2
    assert count_notes(sessions) == 3


class InlineExecutor:
    """Runs nothing until told: what a worker would be handed, in order."""

    def __init__(self) -> None:
        self.submitted: list[list[str]] = []

    def submit(self, fn: object, group: list[Held]) -> Future[None]:
        self.submitted.append([h.delivery.message_id or "" for h in group])
        return Future()


def held(n: int) -> Held:
    delivery = Delivery("k", b"{}", f"m{n}")
    return Held(None, n, "q", None, b"", delivery)  # type: ignore[arg-type]


def test_free_workers_share_what_waits_and_a_busy_one_takes_it_all_when_done() -> None:
    executor = InlineExecutor()
    grouper = Grouper(workers=2, executor=executor)  # type: ignore[arg-type]
    grouper.add(held(1))  # a worker is free: it runs at once, alone
    grouper.add(held(2))
    assert executor.submitted == [["m1"], ["m2"]]
    for n in range(3, 8):
        grouper.add(held(n))  # both busy: they wait
    grouper.done()
    assert executor.submitted[-1] == ["m3", "m4", "m5", "m6", "m7"]
    assert grouper.running == 2 and not grouper.waiting


def test_a_group_is_never_larger_than_its_cap() -> None:
    executor = InlineExecutor()
    grouper = Grouper(workers=1, executor=executor)  # type: ignore[arg-type]
    grouper.add(held(0))
    for n in range(1, GROUP_MAX + 11):
        grouper.add(held(n))
    grouper.done()
    assert len(executor.submitted[-1]) == GROUP_MAX
    grouper.done()
    assert len(executor.submitted[-1]) == 10


def test_a_slow_handler_ends_its_groups_transaction_so_the_next_ones_commit_apart(
    processor: Processor, sessions: sessionmaker[Session]
) -> None:
    slow = AddNote(text="slow", seconds=SLOW_HANDLER_SECONDS * 2).model_dump_json().encode()
    group = [
        add("a"),
        Delivery(AddNote.routing_key, slow, "m-slow", reply_to="caller", user_id="cli"),
        add("b"),
        add("c"),
    ]
    outcomes = processor.process_group(group)
    assert [o.verdict for o in outcomes] == [Verdict.ACK] * 4
    assert count_notes(sessions) == 4
    assert CountingUnitOfWork.commits == 2, "a and slow together, then b and c"
