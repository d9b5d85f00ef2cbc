"""The outbox relay on its own connection: what it marks sent, keeps, and sends again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pika.adapters.blocking_connection import BlockingChannel
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from directdl.bus.relay import Claim, OutboxRelay
from directdl.bus.relay_thread import RelayThread
from directdl.bus.store import Outgoing
from directdl.bus.topology import Topology
from directdl_testing import note_service
from directdl_testing.waiting import wait_until

from .conftest import Drain

pytestmark = pytest.mark.integration

outbox = note_service.store.outbox


@pytest.fixture
def relay(amqp_url: str, sessions: sessionmaker[Session]) -> Iterator[RelayThread]:
    thread = RelayThread(OutboxRelay(note_service.store, sessions, "test"), amqp_url, "test")
    thread.start()
    assert thread.connected.wait(10), "the relay did not connect"
    yield thread
    thread.stop()


def enqueue(sessions: sessionmaker[Session], *rows: Outgoing) -> None:
    with sessions() as session:
        for row in rows:
            note_service.store.enqueue(session, row)
        session.commit()


def row(sessions: sessionmaker[Session], message_id: str) -> tuple[bool, str | None]:
    """Whether the row is marked sent, and its last error."""
    with sessions() as session:
        found = session.execute(
            select(outbox.c.sent_at, outbox.c.last_error).where(outbox.c.message_id == message_id)
        ).one()
    return found.sent_at is not None, found.last_error


def own_queue(channel: BlockingChannel, **arguments: object) -> str:
    return str(channel.queue_declare("", exclusive=True, arguments=arguments).method.queue)


def test_a_batch_goes_out_on_a_wake_up_and_is_marked_sent(
    relay: RelayThread,
    sessions: sessionmaker[Session],
    admin_channel: BlockingChannel,
    drain: Drain,
) -> None:
    queue = own_queue(admin_channel)
    enqueue(sessions, *(Outgoing(f"m-{n}", "", queue, b"{}", f"c-{n}") for n in range(50)))
    relay.wake()
    wait_until(lambda: relay.sent == 50, what="50 rows sent")
    assert [props.message_id for props, _body in drain(queue)] == [f"m-{n}" for n in range(50)]
    assert row(sessions, "m-49") == (True, None)


def test_an_event_nobody_listens_to_is_marked_sent_with_the_reason(
    relay: RelayThread,
    sessions: sessionmaker[Session],
    topology: Topology,
    admin_channel: BlockingChannel,
) -> None:
    topology.declare_exchanges(admin_channel)
    enqueue(sessions, Outgoing("lost", topology.exchange, "nobody.listens", b"{}"))
    relay.wake()
    wait_until(lambda: row(sessions, "lost")[0], what="the row marked sent")
    assert "nothing is bound to 'nobody.listens'" in (row(sessions, "lost")[1] or "")


def test_a_refused_message_stays_pending_with_the_error_and_goes_out_later(
    relay: RelayThread,
    sessions: sessionmaker[Session],
    admin_channel: BlockingChannel,
    drain: Drain,
) -> None:
    # A queue that takes nothing makes the broker nack what is routed to it.
    full = own_queue(admin_channel, **{"x-max-length": 0, "x-overflow": "reject-publish"})
    fine = own_queue(admin_channel)
    enqueue(sessions, Outgoing("taken", "", fine, b"{}"), Outgoing("refused", "", full, b"{}"))
    relay.wake()
    wait_until(lambda: row(sessions, "refused")[1], what="the nack recorded")
    assert row(sessions, "taken") == (True, None)
    assert row(sessions, "refused") == (False, "the broker refused the message (nack)")
    admin_channel.queue_delete(full)  # now it goes nowhere, which is no refusal for a reply
    wait_until(lambda: row(sessions, "refused")[0], timeout=5, what="the retry")
    assert [p.message_id for p, _ in drain(fine)] == ["taken"]


def test_rows_not_marked_after_their_confirms_are_sent_again_with_the_same_ids(
    amqp_url: str,
    sessions: sessionmaker[Session],
    admin_channel: BlockingChannel,
    drain: Drain,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What a crash between the confirms and the commit leaves: confirmed rows still pending.
    queue = own_queue(admin_channel)
    enqueue(sessions, *(Outgoing(f"m-{n}", "", queue, b"{}") for n in range(3)))
    settle, failures = OutboxRelay.settle, []

    def settle_failing_once(self: OutboxRelay, claim: Claim) -> int:
        if not failures:
            failures.append(claim)
            claim.session.close()
            raise ConnectionError("the database went away")
        return settle(self, claim)

    monkeypatch.setattr(OutboxRelay, "settle", settle_failing_once)
    thread = RelayThread(OutboxRelay(note_service.store, sessions, "test"), amqp_url, "test")
    thread.start()
    try:
        wait_until(lambda: thread.sent == 3, what="the rows sent again")
    finally:
        thread.stop()
    ids = [props.message_id for props, _body in drain(queue)]
    assert ids == ["m-0", "m-1", "m-2"] * 2
