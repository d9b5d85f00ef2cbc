"""A delivery's attempt and sender, through the copies a consumer republishes itself."""

from __future__ import annotations

from typing import Any

from directdl.bus import delivery as d
from directdl.bus.delivery import Delivery, dead_letter_headers, received, retry_headers

QUEUE = "registration.events"
CONSUMER = "registration"


def arrive(
    headers: dict[str, Any] | None,
    user_id: str | None = CONSUMER,
    routing_key: str = QUEUE,
    republishers: tuple[str, ...] = (CONSUMER,),
) -> Delivery:
    """What the consumer makes of a message; a copy comes back by the queue's name."""
    return received(
        routing_key,
        b"{}",
        message_id="m-1",
        correlation_id="c-1",
        reply_to="amq.rabbitmq.reply-to.x",
        content_type="application/json",
        user_id=user_id,
        headers=headers,
        republishers=republishers,
    )


def first(user_id: str | None = "host-agent-host-1", delivery_count: int | None = None) -> Delivery:
    headers = {} if delivery_count is None else {d.DELIVERY_COUNT: delivery_count}
    return arrive(headers, user_id=user_id, routing_key="template.download.completed")


def test_a_first_delivery_is_attempt_one_and_a_redelivery_counts_on() -> None:
    assert first().attempt == 1
    assert first(delivery_count=2).attempt == 3
    assert first().routing_key == "template.download.completed"
    assert first().user_id == "host-agent-host-1"


def test_a_retry_copy_is_the_next_attempt_of_the_same_message_from_the_same_sender() -> None:
    original = first(delivery_count=1)  # attempt 2: a redelivery after a crash
    copy = arrive(retry_headers(original, "OperationalError: locked", CONSUMER))

    assert copy.attempt == 3
    assert copy.routing_key == "template.download.completed"
    assert copy.user_id == "host-agent-host-1"  # not the consumer that republished it
    assert (copy.message_id, copy.reply_to) == (original.message_id, original.reply_to)
    # A redelivery of the copy counts on from there.
    redelivered = arrive({**retry_headers(original, "e", CONSUMER), d.DELIVERY_COUNT: 1})
    assert redelivered.attempt == 4


def test_every_retry_counts_once() -> None:
    delivery = first()
    attempts = [delivery.attempt]
    for _ in range(3):
        delivery = arrive(retry_headers(delivery, "boom", CONSUMER))
        attempts.append(delivery.attempt)
    assert attempts == [1, 2, 3, 4]
    assert delivery.user_id == "host-agent-host-1"


def test_a_copy_from_anyone_else_is_taken_for_what_it_is() -> None:
    # A host agent may publish to any queue by name; it cannot pick a handler or a sender.
    forged = retry_headers(first(user_id="registration"), "x", CONSUMER)
    delivery = arrive(forged, user_id="host-agent-host-2")

    assert delivery.routing_key == QUEUE  # which no handler takes
    assert delivery.user_id == "host-agent-host-2"
    assert delivery.attempt == 1


def test_a_shared_queue_believes_the_copies_of_every_service_taking_turns() -> None:
    copy = retry_headers(first(user_id="cli"), "x", "certificate")
    delivery = arrive(copy, user_id="certificate", republishers=(CONSUMER, "certificate"))
    assert (delivery.user_id, delivery.attempt) == ("cli", 2)


def test_a_dead_letter_says_how_often_and_a_replay_of_it_starts_over() -> None:
    last = arrive(retry_headers(arrive(retry_headers(first(), "a", CONSUMER)), "b", CONSUMER))
    headers = dead_letter_headers(last, "RuntimeError: b", CONSUMER)

    assert headers[d.ATTEMPTS] == 3
    assert headers[d.ERROR] == "RuntimeError: b"
    assert headers[d.ORIGINAL_ROUTING_KEY] == "template.download.completed"
    assert headers[d.ORIGINAL_USER_ID] == "host-agent-host-1"
    assert headers[d.SERVICE] == CONSUMER
    assert d.ATTEMPT not in headers

    replayed = arrive(headers)  # moved back to its queue by the service's own user
    assert replayed.attempt == 1
    assert replayed.routing_key == "template.download.completed"
    assert replayed.user_id == "host-agent-host-1"


def test_a_copy_drops_the_old_delivery_count_and_keeps_the_senders_headers() -> None:
    original = arrive({d.DELIVERY_COUNT: 2, "trace": "t-1"}, user_id="cli", routing_key="x.y")
    headers = retry_headers(original, "e" * 5000, CONSUMER)

    assert d.DELIVERY_COUNT not in headers
    assert headers["trace"] == "t-1"
    assert headers[d.ATTEMPT] == 4
    assert len(headers[d.ERROR]) == 1000


def test_nonsense_counts_count_as_none() -> None:
    assert arrive({d.DELIVERY_COUNT: "many"}, user_id="cli").attempt == 1
    assert arrive({d.DELIVERY_COUNT: -5}, user_id="cli").attempt == 1
    copy = {d.ORIGINAL_ROUTING_KEY: "x.y", d.ATTEMPT: "soon"}
    assert arrive(copy).attempt == 1
    assert arrive(copy | {d.ATTEMPT: 0}).attempt == 1
    # pika hands over a header that is not UTF-8 as bytes.
    assert arrive({d.ORIGINAL_ROUTING_KEY: b"x.y", d.ATTEMPT: 2}).routing_key == "x.y"
