"""What a refused or failed message is answered: its problem, short, never its body or a trace."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from directdl.bus.delivery import Delivery, Verdict
from directdl.bus.processing import Processor
from directdl.runtime.db import session_factory
from directdl.runtime.uow import UnitOfWork
from directdl_testing import note_service
from directdl_testing.memory import memory_engine

pytestmark = pytest.mark.unit

MIB = 1 << 20


@pytest.fixture
def sessions() -> sessionmaker[Session]:
    return session_factory(memory_engine(note_service.metadata))


def processor(sessions: sessionmaker[Session], **kw: Any) -> Processor:
    routes = note_service.NoteService().routes()
    return Processor(routes, lambda: UnitOfWork(sessions), note_service.store, "directdl", **kw)


def delivery(body: bytes, routing_key: str = "test.note.add", **kw: Any) -> Delivery:
    fields: dict[str, Any] = {"message_id": "m-1", "reply_to": "caller", "correlation_id": "c-1"}
    return Delivery(routing_key=routing_key, body=body, **(fields | kw))


def raw_replies(sessions: sessionmaker[Session]) -> list[bytes]:
    with sessions() as session:
        return [m.body for m in note_service.store.pending(session) if m.exchange == ""]


def only_error(sessions: sessionmaker[Session]) -> tuple[dict[str, Any], int]:
    [body] = raw_replies(sessions)
    reply = json.loads(body)
    assert reply["ok"] is False
    return reply["error"], len(body)


def test_a_body_over_the_limit_is_refused_by_its_size_without_being_echoed(
    sessions: sessionmaker[Session],
) -> None:
    body = json.dumps({"text": "secret-" + "x" * (3 * MIB // 2)}).encode()

    outcome = processor(sessions).process(delivery(body))

    assert outcome.verdict is Verdict.DEAD_LETTER
    error, size = only_error(sessions)
    assert error["code"] == "INVALID_MESSAGE"
    assert f"{len(body)} bytes" in error["message"]
    assert "directdl.message.max.bytes" in error["message"]
    assert error["details"] == {"size": len(body), "limit": MIB}
    assert "secret" not in json.dumps(error) and size < 1024


def test_the_limit_is_read_on_each_delivery(sessions: sessionmaker[Session]) -> None:
    limit = [10_000]
    p = processor(sessions, max_body_bytes=lambda: limit[0])
    body = json.dumps({"text": "y" * 20_000}).encode()

    assert p.process(delivery(body)).verdict is Verdict.DEAD_LETTER
    limit[0] = 100_000
    assert p.process(delivery(body, message_id="m-2")).verdict is Verdict.ACK


def test_a_long_bad_value_is_quoted_as_a_short_excerpt_with_its_size(
    sessions: sessionmaker[Session],
) -> None:
    body = json.dumps({"text": 5, "colour": "red" * 30_000}).encode()

    processor(sessions).process(delivery(body))

    error, size = only_error(sessions)
    inputs = {e["field"]: e["input"] for e in error["details"]["errors"]}
    assert inputs["text"] == 5  # short values are quoted whole
    assert inputs["colour"].startswith("red") and inputs["colour"].endswith("…(90000 bytes)")
    assert len(inputs["colour"]) < 100
    assert size < 2048 and len(error["message"]) < 300


def test_a_message_with_thousands_of_errors_lists_a_few(sessions: sessionmaker[Session]) -> None:
    body = json.dumps({f"extra{i}": i for i in range(5000)} | {"text": "t"}).encode()

    processor(sessions).process(delivery(body))

    error, size = only_error(sessions)
    assert len(error["details"]["errors"]) == 20
    assert "(and 4999 more)" in error["message"] and size < 8192


def test_giving_up_says_where_to_look_but_not_what_failed(
    sessions: sessionmaker[Session],
) -> None:
    p = processor(sessions, service="notes")
    failure = (
        "ProgrammingError: (psycopg.errors.UntranslatableCharacter) "
        "SELECT templates.id FROM templates WHERE name = %(name)s\nTraceback (most recent call)"
    )

    p.give_up(delivery(b"{}", "test.explode", headers={"x-delivery-count": 2}), failure)

    error, _ = only_error(sessions)
    assert error["code"] == "INTERNAL"
    assert error["message"] == (
        "test.explode failed after 3 attempts; see the notes service's log, message_id m-1"
    )


@pytest.mark.parametrize("name", ["correlation_id", "reply_to"])
def test_a_nul_in_the_reply_address_is_refused_and_not_answered(
    sessions: sessionmaker[Session], name: str
) -> None:
    outcome = processor(sessions).process(delivery(b'{"text": "hi"}', **{name: "a\x00b"}))

    assert outcome.verdict is Verdict.DEAD_LETTER
    assert name in outcome.error
    assert raw_replies(sessions) == []  # the outbox could not hold the address


def test_a_nul_in_the_message_id_is_answered_when_the_address_is_clean(
    sessions: sessionmaker[Session],
) -> None:
    processor(sessions).process(delivery(b'{"text": "hi"}', message_id="m\x00"))

    error, _ = only_error(sessions)
    assert error["code"] == "INVALID_MESSAGE" and error["details"] == {"property": "message_id"}
