"""The consumer loop against a real RabbitMQ: retries, dead letters, heartbeats, confirms."""

from __future__ import annotations

from collections.abc import Callable

import pika
import pytest
import structlog
from sqlalchemy.orm import Session, sessionmaker

from directdl.bus.client import BusClient
from directdl.bus.connection import broker_user
from directdl.bus.publisher import Unroutable
from directdl.bus.topology import Topology
from directdl_testing import note_service
from directdl_testing.note_service import NoteService, running_consumer
from directdl_testing.waiting import wait_until

pytestmark = pytest.mark.integration


def test_a_handler_that_keeps_failing_is_retried_then_answered_and_dead_lettered(
    amqp_url: str,
    topology: Topology,
    client: BusClient,
    sessions: sessionmaker[Session],
    drain: Callable[[str], list[tuple[pika.BasicProperties, bytes]]],
) -> None:
    handlers = NoteService()
    with running_consumer(amqp_url, topology, handlers, sessions, max_attempts=3):
        reply = client.call(note_service.Explode(reason="disk on fire"), timeout=20)

    assert handlers.explosions == 3
    assert reply.error is not None and reply.error.code == "INTERNAL"
    # What the exception said stays with the operators (log, dead letter), not the caller.
    assert "disk on fire" not in reply.error.message
    assert reply.error.message.startswith("test.explode failed after 3 attempts")
    [(props, body)] = drain(topology.dead_letter_queue("test"))
    assert b"disk on fire" in body
    assert "RuntimeError: disk on fire" in props.headers["x-directdl-error"]
    assert props.headers["x-directdl-attempts"] == 3
    assert props.headers["x-directdl-original-routing-key"] == "test.explode"
    # The copy is the consumer's to send (the broker checks user_id); the sender is kept.
    assert props.user_id == broker_user(amqp_url)
    assert props.headers["x-directdl-original-user-id"] == broker_user(amqp_url)


def test_a_long_handler_does_not_starve_heartbeats(
    amqp_url: str, topology: Topology, client: BusClient, sessions: sessionmaker[Session]
) -> None:
    # With a 1 s heartbeat the broker drops a connection silent for ~2 s; the handler takes 4.
    url = amqp_url + ("&" if "?" in amqp_url else "?") + "heartbeat=1"
    with running_consumer(url, topology, NoteService(), sessions) as consumer:
        reply = client.call(note_service.AddNote(text="slow", seconds=4), timeout=20)
        assert consumer.connections == 1
        assert consumer.connected.is_set()

    assert reply.ok
    assert note_service.count_notes(sessions) == 1


def test_an_in_flight_message_finishes_and_is_acked_on_shutdown(
    amqp_url: str, topology: Topology, client: BusClient, sessions: sessionmaker[Session]
) -> None:
    with running_consumer(amqp_url, topology, NoteService(), sessions) as consumer:
        body = note_service.AddNote(text="late", seconds=1.5).model_dump_json().encode()
        client.publish("test.note.add", body, reply_to="amq.rabbitmq.reply-to", correlation_id="c1")
        wait_until(lambda: consumer._inflight, what="the handler to start")
    # the consumer has stopped: the reply and ack went out before it closed
    assert client.wait_reply("c1", timeout=5).ok
    with running_consumer(amqp_url, topology, NoteService(), sessions):
        assert client.call(note_service.AddNote(text="other")).ok
    assert note_service.count_notes(sessions) == 2


def test_publishing_what_nothing_consumes_raises(
    amqp_url: str, topology: Topology, client: BusClient, sessions: sessionmaker[Session]
) -> None:
    with pytest.raises(Unroutable, match="does not exist"):
        client.publish("test.note.add", b"{}")  # no service has declared the exchange yet
    with running_consumer(amqp_url, topology, NoteService(), sessions):
        with pytest.raises(Unroutable, match=r"nobody\.listens"):
            client.publish("nobody.listens", b"{}")
        assert client.call(note_service.AddNote(text="still works")).ok


def test_every_delivery_log_carries_service_message_and_routing(
    amqp_url: str, topology: Topology, client: BusClient, sessions: sessionmaker[Session]
) -> None:
    with (
        running_consumer(amqp_url, topology, NoteService(), sessions),
        structlog.testing.capture_logs(
            processors=[structlog.contextvars.merge_contextvars]
        ) as logs,
    ):
        client.call(note_service.AddNote(text="logged"), message_id="m-log")

    [handled] = [entry for entry in logs if entry["event"] == "message.handled"]
    assert handled["service"] == "test"
    assert handled["message_id"] == "m-log"
    assert handled["routing_key"] == "test.note.add"
    assert handled["correlation_id"]
