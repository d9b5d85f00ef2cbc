"""Find a real RabbitMQ for integration tests: testcontainers with Docker, else AMQP_URL."""

from __future__ import annotations

import os
from collections.abc import Callable

import pika
import pika.exceptions

from directdl.bus.connection import describe_error, redact
from directdl.runtime.settings import DEFAULT_AMQP_URL

# Same minor version as the Debian package the project runs on.
RABBITMQ_IMAGE = "rabbitmq:3.10"
DOCKER_PING_TIMEOUT_S = 3


class BrokerUnavailable(RuntimeError):
    """No broker could be found or started; the message says how to get one."""


def resolve_broker_url() -> tuple[str, Callable[[], None]]:
    """Return an AMQP URL of a running broker and a function that releases it."""
    container_error = ""
    if _docker_engine_reachable():
        try:
            return _start_container()
        except Exception as err:  # any failure here means "try the next source"
            container_error = describe_error(err)

    url = os.environ.get("AMQP_URL", DEFAULT_AMQP_URL)
    failure = broker_answers(url)
    if failure is None:
        return url, _no_op

    docker = (
        f"the Docker engine is reachable but the RabbitMQ container failed ({container_error})"
        if container_error
        else "no Docker engine is reachable for testcontainers"
    )
    raise BrokerUnavailable(
        f"No RabbitMQ broker at {redact(url)} ({failure}): start one with "
        "`rabbitmq-server -detached` (or run `bash .ci/run`, which installs it), "
        f"or set AMQP_URL; {docker}."
    )


def broker_answers(url: str, timeout_s: float = 3.0) -> str | None:
    """Open and close one connection to ``url``; return why it failed, or None if it worked."""
    params = pika.URLParameters(url)
    params.connection_attempts = 1
    params.socket_timeout = timeout_s
    params.stack_timeout = timeout_s + 2
    try:
        pika.BlockingConnection(params).close()
    except (pika.exceptions.AMQPError, OSError) as err:
        return describe_error(err)
    return None


def _docker_engine_reachable() -> bool:
    try:
        import docker  # type: ignore[import-untyped]

        client = docker.from_env(timeout=DOCKER_PING_TIMEOUT_S)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no SDK, no socket, no daemon, a timeout: all mean "no Docker"
        return False


def _start_container() -> tuple[str, Callable[[], None]]:
    from testcontainers.community.rabbitmq import RabbitMqContainer

    container = RabbitMqContainer(RABBITMQ_IMAGE)
    container.start()
    try:
        host = container.get_container_host_ip()
        port = container.get_exposed_port(container.port)
        url = f"amqp://{container.username}:{container.password}@{host}:{port}/"
    except BaseException:
        container.stop()
        raise

    def stop() -> None:
        container.stop()

    return url, stop


def _no_op() -> None:
    return None
