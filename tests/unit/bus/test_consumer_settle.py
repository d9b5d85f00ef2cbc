"""What the consumer sends for a failed delivery, and when it acks: no broker, fakes only."""

from __future__ import annotations

from typing import Any, cast

import pika
import pytest

from directdl.backoff import Backoff
from directdl.bus import delivery as d
from directdl.bus.delivery import Delivery, Outcome, Verdict
from directdl.bus.publisher import ConfirmingPublisher, PublishError
from directdl.bus.settle import Held, Settler
from directdl.bus.topology import Topology

QUEUE = "registration.events"


class FakeChannel:
    def __init__(self) -> None:
        self.settled: list[tuple[str, int, bool | None]] = []

    def basic_ack(self, tag: int) -> None:
        self.settled.append(("ack", tag, None))

    def basic_nack(self, tag: int, requeue: bool) -> None:
        self.settled.append(("nack", tag, requeue))


class FakePublisher:
    def __init__(self, channel: FakeChannel, refuse: bool = False) -> None:
        self.channel, self.refuse = channel, refuse
        self.sent: list[tuple[str, str, bytes, pika.BasicProperties]] = []

    def publish(self, exchange: str, key: str, body: bytes, props: pika.BasicProperties) -> None:
        if self.refuse:
            raise PublishError("the broker refused the message")
        assert not self.channel.settled, "acked before the copy was confirmed"
        self.sent.append((exchange, key, body, props))


class Fixed(Backoff):
    def delay(self, attempt: int) -> float:
        return self.ceiling(attempt)


def held(channel: FakeChannel, attempt: int = 1, **props: Any) -> Held:
    original = pika.BasicProperties(
        message_id="m-1",
        reply_to="amq.rabbitmq.reply-to.x",
        user_id="host-agent-host-1",
        headers={"trace": "t"},
        **props,
    )
    delivery = Delivery(
        "template.download.completed",
        b"{}",
        message_id="m-1",
        user_id="host-agent-host-1",
        headers={"trace": "t"},
        first_attempt=attempt,
    )
    return Held(cast(Any, channel), 7, QUEUE, original, b"{}", delivery)


def settler() -> Settler:
    return Settler(Topology(), "registration", "registration", Fixed(base=0.5, cap=10.0))


def settle(
    outcome: Outcome, attempt: int = 1, refuse: bool = False
) -> tuple[FakeChannel, FakePublisher]:
    channel = FakeChannel()
    publisher = FakePublisher(channel, refuse)
    message = held(channel, attempt, expiration="60000")
    settler().settle_failure(message, cast(ConfirmingPublisher, publisher), outcome)
    return channel, publisher


def test_a_retry_is_a_copy_waiting_out_its_back_off_then_the_original_is_acked() -> None:
    channel, publisher = settle(Outcome(Verdict.RETRY, "OperationalError: locked"), attempt=2)

    [(exchange, key, body, props)] = publisher.sent
    assert (exchange, key, body) == ("", "registration.events.retry", b"{}")
    assert props.expiration == "1000"  # the ceiling after the 2nd failure, in milliseconds
    assert props.user_id == "registration"  # RabbitMQ accepts only the consumer's own
    assert props.delivery_mode == 2
    assert (props.message_id, props.reply_to) == ("m-1", "amq.rabbitmq.reply-to.x")
    assert props.headers[d.ATTEMPT] == 3
    assert props.headers[d.ORIGINAL_USER_ID] == "host-agent-host-1"
    assert props.headers[d.ORIGINAL_ROUTING_KEY] == "template.download.completed"
    assert props.headers["trace"] == "t"
    assert channel.settled == [("ack", 7, None)]


def test_a_retry_the_broker_refuses_is_requeued_instead() -> None:
    channel, _ = settle(Outcome(Verdict.RETRY, "boom"), refuse=True)
    assert channel.settled == [("nack", 7, True)]


def test_a_dead_letter_goes_to_the_services_dead_letters_and_keeps_no_ttl() -> None:
    channel, publisher = settle(Outcome(Verdict.DEAD_LETTER, "gave up"), attempt=3)

    [(exchange, key, _, props)] = publisher.sent
    assert (exchange, key) == ("directdl.dlx", "registration.dead")
    assert props.expiration is None
    assert props.headers[d.ATTEMPTS] == 3
    assert d.ATTEMPT not in props.headers
    assert channel.settled == [("ack", 7, None)]


@pytest.mark.parametrize("attempt", [10, 11])
def test_past_the_delivery_limit_a_retry_is_dead_lettered_instead(attempt: int) -> None:
    _, publisher = settle(Outcome(Verdict.RETRY, "worker failed"), attempt=attempt)
    [(exchange, key, _, _)] = publisher.sent
    assert (exchange, key) == ("directdl.dlx", "registration.dead")


def test_a_dead_letter_the_broker_refuses_is_rejected() -> None:
    channel, _ = settle(Outcome(Verdict.DEAD_LETTER, "x"), refuse=True)
    assert channel.settled == [("nack", 7, False)]
