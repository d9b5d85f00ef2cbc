"""Exactly one reply per command, and one publish per outbox row, when nothing crashes."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pika
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from directdl.bus.client import DIRECT_REPLY_TO, ReplyTimeout
from directdl.bus.publisher import properties
from directdl.bus.relay import OutboxRelay
from directdl.bus.relay_thread import RelayThread
from directdl.bus.store import Outgoing
from directdl.bus.topology import Topology
from directdl.runtime.db import make_engine, session_factory
from directdl.runtime.service import Service
from directdl_testing import note_service
from directdl_testing.accounts import TestAccounts
from directdl_testing.counting import EveryReply
from directdl_testing.recorder import MessageRecorder
from directdl_testing.services import running
from directdl_testing.waiting import wait_until
from registration.bootstrap import bootstrap
from registration.config import RegistrationSettings

pytestmark = pytest.mark.integration

COMMANDS = 500  # half registrations (a reply and an event each), half listings
QUIET_S = 1.0  # a copy would follow its original within this
ROWS = 400


@pytest.fixture
def registration(
    broker_accounts: TestAccounts, topology: Topology, data_dir: Path
) -> Iterator[Service]:
    settings = RegistrationSettings(
        AMQP_URL=broker_accounts.url("registration"),
        DIRECTDL_EXCHANGE=topology.exchange,
        DIRECTDL_QUEUE_PREFIX=topology.queue_prefix,
        DIRECTDL_DATA_DIR=data_dir,
        health_port=0,
        check_urls=False,  # made-up URLs
    )
    with running(bootstrap(settings)) as service:
        yield service


def command(n: int) -> tuple[str, bytes]:
    if n % 2:
        return "template.list", json.dumps({"name": f"t-{n - 1}"}).encode()
    body = {
        "name": f"t-{n}",
        "url": f"https://images.example/t-{n}.qcow2",
        "zone_id": "zone-1",
        "hypervisor": "KVM",
        "format": "QCOW2",
        "checksum": "{SHA-256}" + "ab" * 32,
    }
    return "template.register", json.dumps(body).encode()


def test_many_concurrent_commands_get_one_reply_each_and_one_event_each(
    amqp_url: str, topology: Topology, registration: Service, recorder: MessageRecorder
) -> None:
    with EveryReply(amqp_url, topology, app_id="test-exactly-one") as client:
        sent = []
        # Each publish waits for its confirm, not its reply: hundreds are in flight at once.
        for n in range(COMMANDS):
            routing_key, body = command(n)
            sent.append(str(uuid.uuid4()))
            client.publish(routing_key, body, correlation_id=sent[-1], reply_to=DIRECT_REPLY_TO)
        deadline = time.monotonic() + 20
        while len({cid for cid, _ in client.deliveries}) < COMMANDS:
            assert time.monotonic() < deadline, f"{len(client.deliveries)} replies so far"
            client.pump(0.1)
        pump_for(client.pump, QUIET_S)
        per_command = Counter(cid for cid, _ in client.deliveries)

        assert set(per_command) == set(sent)
        assert [cid for cid, count in per_command.items() if count != 1] == []
        # Every reply is its own message, none a copy of another's.
        assert len({mid for _, mid in client.deliveries}) == COMMANDS
        registered = [c for c in sent[::2] if client.wait_reply(c, timeout=1).ok]
        assert len(registered) == COMMANDS // 2

    recorder.expect("template.registered", timeout=10, count=COMMANDS // 2)
    pump_for(recorder.poll, QUIET_S)
    events = [m for m in recorder.messages if m.routing_key == "template.registered"]
    assert len(events) == COMMANDS // 2
    assert len({m.body["template"]["id"] for m in events}) == COMMANDS // 2
    assert len({m.properties.message_id for m in events}) == COMMANDS // 2


def pump_for(pump: Callable[[float], None], seconds: float) -> None:
    """Deliver what arrives for `seconds`; one pump returns once it has delivered anything."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        pump(left)


@pytest.fixture
def shared_database(postgres_url: str) -> Iterator[sessionmaker[Session]]:
    """One PostgreSQL database, as sync-scheduler replicas share theirs."""
    engine = make_engine(postgres_url)
    note_service.metadata.create_all(engine)
    yield session_factory(engine)
    engine.dispose()


def test_two_relays_on_one_database_publish_each_row_once(
    amqp_url: str, shared_database: sessionmaker[Session]
) -> None:
    sessions, store = shared_database, note_service.store
    admin = pika.BlockingConnection(pika.URLParameters(amqp_url))
    queue = admin.channel().queue_declare("", exclusive=True).method.queue
    with sessions() as session:
        for n in range(ROWS):
            store.enqueue(session, Outgoing(f"row-{n}", "", queue, b"{}", f"c-{n}"))
        session.commit()

    # Small batches, so that both relays get a share of the rows to race for.
    relays = [
        RelayThread(OutboxRelay(store, sessions, "test"), amqp_url, f"test-{i}", batch=10)
        for i in range(2)
    ]
    for relay in relays:
        relay.start()
    try:
        wait_until(lambda: pending(sessions) == 0, timeout=30, what="every row sent")
    finally:
        for relay in relays:
            relay.stop()
    sent = [relay.sent for relay in relays]

    published: Counter[str] = Counter()
    channel = admin.channel()
    while (taken := channel.basic_get(queue, auto_ack=True))[0] is not None:
        published[taken[1].message_id] += 1
    admin.close()
    assert len(published) == ROWS
    assert {mid: n for mid, n in published.items() if n > 1} == {}
    assert sum(sent) == ROWS and min(sent) > 0, f"each relay's share: {sent}"
    with sessions() as session:
        assert note_service.store.backlog(session)[0] == 0


def pending(sessions: sessionmaker[Session]) -> int:
    outbox = note_service.store.outbox
    unsent = select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
    with sessions() as session:
        return session.scalar(unsent) or 0


def test_a_copy_published_twice_reaches_the_caller_once(amqp_url: str, topology: Topology) -> None:
    # What a relay re-sends after a crash between the confirm and `mark_sent`: the same reply,
    # same message_id, to the caller's direct reply-to address.
    admin = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = admin.channel()
    topology.declare_exchanges(channel)
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(queue, topology.exchange, routing_key="test.echo")
    with EveryReply(amqp_url, topology, app_id="test-exactly-one") as caller:
        caller.publish("test.echo", b"{}", correlation_id="c-1", reply_to=DIRECT_REPLY_TO)
        _method, props, _body = channel.basic_get(queue, auto_ack=True)
        assert props is not None and props.reply_to.startswith(DIRECT_REPLY_TO + ".")
        answer = json.dumps({"ok": True, "result": {"n": 1}}).encode()
        reply_props = properties("m-1", "reply", app_id="test", correlation_id="c-1")
        channel.basic_publish("", props.reply_to, answer, reply_props)
        reply = caller.wait_reply("c-1", timeout=5)
        assert reply.ok and reply.result == {"n": 1}
        # The copy comes after its original was taken, as a re-sent one does.
        channel.basic_publish("", props.reply_to, answer, reply_props)
        with pytest.raises(ReplyTimeout):
            caller.wait_reply("c-1", timeout=QUIET_S)
        assert caller.deliveries == [("c-1", "m-1")] * 2, "both copies reached the client"
    admin.close()
