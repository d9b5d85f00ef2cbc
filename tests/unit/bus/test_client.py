"""BusClient and copies: a reply or watched message re-sent with its message_id is seen once."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pika
import pytest
from pika.spec import Basic

from directdl.bus import client as client_module
from directdl.bus.client import DIRECT_REPLY_TO, REMEMBERED, BusClient, ReplyTimeout

pytestmark = pytest.mark.unit

Callback = Callable[[Any, Basic.Deliver, pika.BasicProperties, bytes], None]
OK = b'{"ok": true, "result": {"n": 1}}'


class FakeChannel:
    def __init__(self) -> None:
        self.consumers: dict[str, Callback] = {}

    def basic_consume(self, queue: str, on_message_callback: Callback, auto_ack: bool) -> str:
        self.consumers[queue] = on_message_callback
        return f"ctag-{queue}"

    def confirm_delivery(self) -> None:
        pass

    def queue_declare(self, queue: str, **_: Any) -> Any:
        return type("Ok", (), {"method": type("M", (), {"queue": "watch-q"})})()

    def queue_bind(self, *_: Any, **__: Any) -> None:
        pass


class FakeConnection:
    """Hands what a test queued to the consumers when the client processes events."""

    def __init__(self) -> None:
        self.channel_ = FakeChannel()
        self.arriving: list[tuple[str, pika.BasicProperties, bytes, str]] = []
        self.is_open = True

    def channel(self) -> FakeChannel:
        return self.channel_

    def process_data_events(self, time_limit: float = 0) -> None:
        if not self.arriving:
            time.sleep(min(time_limit, 0.01))
        arriving, self.arriving = self.arriving, []
        for queue, props, body, routing_key in arriving:
            method = Basic.Deliver(routing_key=routing_key)
            self.channel_.consumers[queue](self.channel_, method, props, body)

    def close(self) -> None:
        self.is_open = False


@pytest.fixture
def connection(monkeypatch: pytest.MonkeyPatch) -> FakeConnection:
    fake = FakeConnection()
    monkeypatch.setattr(client_module, "connect", lambda _url, _name: fake)
    return fake


@pytest.fixture
def client(connection: FakeConnection) -> BusClient:
    return BusClient("amqp://cli:secret@broker/")


def reply(
    connection: FakeConnection, message_id: str | None, correlation_id: str, body: bytes = OK
) -> None:
    props = pika.BasicProperties(message_id=message_id, correlation_id=correlation_id, type="reply")
    connection.arriving.append((DIRECT_REPLY_TO, props, body, DIRECT_REPLY_TO))


def test_a_copy_arriving_after_its_reply_was_taken_is_dropped(
    client: BusClient, connection: FakeConnection, caplog: pytest.LogCaptureFixture
) -> None:
    reply(connection, "m-1", "c-1")
    assert client.wait_reply("c-1", timeout=1).result == {"n": 1}

    reply(connection, "m-1", "c-1")
    with (
        caplog.at_level(logging.DEBUG, logger=client_module.__name__),
        pytest.raises(ReplyTimeout),
    ):
        client.wait_reply("c-1", timeout=0.1)
    [record] = caplog.records
    assert record.levelno == logging.DEBUG
    assert "m-1" in record.getMessage() and "c-1" in record.getMessage()


def test_a_copy_arriving_with_its_reply_does_not_replace_it(
    client: BusClient, connection: FakeConnection
) -> None:
    reply(connection, "m-1", "c-1")
    reply(connection, "m-1", "c-1", b'{"ok": true, "result": {"n": 2}}')  # not a real copy's body
    assert client.wait_reply("c-1", timeout=1).result == {"n": 1}
    with pytest.raises(ReplyTimeout):
        client.wait_reply("c-1", timeout=0.1)


def test_a_copy_is_known_whatever_correlation_id_it_is_waited_for_by(
    client: BusClient, connection: FakeConnection
) -> None:
    reply(connection, "m-1", "c-1")
    assert client.wait_reply("c-1", timeout=1).ok
    reply(connection, "m-1", "c-2")
    with pytest.raises(ReplyTimeout):
        client.wait_reply("c-2", timeout=0.1)


def test_a_second_answer_with_its_own_message_id_is_not_hidden(
    client: BusClient, connection: FakeConnection
) -> None:
    # Not a copy: a bug, or a replay from a dead-letter queue. The caller gets to see it.
    reply(connection, "m-1", "c-1")
    assert client.wait_reply("c-1", timeout=1).ok
    reply(connection, "m-2", "c-1")
    assert client.wait_reply("c-1", timeout=1).ok


def test_replies_without_a_message_id_are_all_surfaced(
    client: BusClient, connection: FakeConnection
) -> None:
    for _ in range(2):
        reply(connection, None, "c-1")
        assert client.wait_reply("c-1", timeout=1).ok


def test_watched_copies_are_shown_once(client: BusClient, connection: FakeConnection) -> None:
    seen: list[tuple[str, bytes]] = []
    client.watch(("download.#",), lambda key, body: seen.append((key, body)))
    for message_id in ("e-1", "e-1", "e-2"):
        props = pika.BasicProperties(message_id=message_id, type="download.progress")
        connection.arriving.append(("watch-q", props, message_id.encode(), "download.progress"))
    client.pump(0.1)
    assert seen == [("download.progress", b"e-1"), ("download.progress", b"e-2")]


def test_the_oldest_message_ids_are_forgotten_first(
    client: BusClient, connection: FakeConnection
) -> None:
    for n in range(REMEMBERED + 1):
        reply(connection, f"m-{n}", f"c-{n}")
    client.pump(0)
    reply(connection, "m-0", "again")  # forgotten: taken as new
    reply(connection, f"m-{REMEMBERED}", "late")  # remembered: a copy
    assert client.wait_reply("again", timeout=1).ok
    with pytest.raises(ReplyTimeout):
        client.wait_reply("late", timeout=0.1)
