"""A private broker survives an application restart with its durable quorum queue intact."""

from __future__ import annotations

import uuid

import pika
import pytest

from directdl_testing.private_broker import PrivateBroker

pytestmark = pytest.mark.integration


def test_persistent_message_in_quorum_queue_survives_stop_app_start_app(
    private_broker: PrivateBroker,
) -> None:
    broker = private_broker
    queue = f"test-{uuid.uuid4().hex}"
    body = b"still here after the restart"
    connection = pika.BlockingConnection(pika.URLParameters(broker.url))
    channel = connection.channel()
    channel.confirm_delivery()
    channel.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
    channel.basic_publish(
        "", queue, body, pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent)
    )
    connection.close()

    broker.stop_app()
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        pika.BlockingConnection(pika.URLParameters(broker.url + "?connection_attempts=1"))
    broker.start_app()

    connection = pika.BlockingConnection(pika.URLParameters(broker.url))
    channel = connection.channel()
    method, _properties, received = channel.basic_get(queue, auto_ack=True)
    assert method is not None, f"{queue} lost its message across stop_app/start_app"
    assert received == body
    assert channel.queue_declare(queue, passive=True).method.message_count == 0
    connection.close()
