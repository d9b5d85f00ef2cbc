"""The echoes bench/deploy.py compares a deploy with, raw pika and directdl's bus: three hops,
one reply to each request."""

from __future__ import annotations

from pathlib import Path

import pika
import pytest
from sqlalchemy import create_engine, func, select

from directdl.bus.topology import Topology
from directdl_testing.bus_echo import BUS_ECHO_REQUEST, EchoRequest, bus_echo_hops, waiting
from directdl_testing.round_trips import ECHO_REQUEST, ECHO_ROUTES, Operator, echo_hops

pytestmark = pytest.mark.integration


def echo_queues(topology: Topology) -> list[str]:
    return [
        f"{topology.queue_prefix}echo-{role}.{key}"
        for role, routes in ECHO_ROUTES.items()
        for key in routes
    ]


def queue_exists(url: str, queue: str) -> bool:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        connection.channel().queue_declare(queue, passive=True)
        return True
    except pika.exceptions.ChannelClosedByBroker:
        return False
    finally:
        connection.close()


def test_each_request_is_answered_once_through_both_hops(amqp_url: str, topology: Topology) -> None:
    with echo_hops(amqp_url, topology):
        operator = Operator(amqp_url, topology.exchange)
        sent = [operator.send(ECHO_REQUEST, b"x" * 700) for _ in range(20)]
        replies = operator.wait(sent, timeout=10)
        seconds, one_more = operator.round_trip(ECHO_REQUEST, b"{}", timeout=10)
        assert all(queue_exists(amqp_url, queue) for queue in echo_queues(topology))
        operator.close()
    assert replies == [{"ok": True}] * 20 and one_more == {"ok": True}
    assert set(sent) <= set(operator.replies) and operator.answers == 21
    assert 0 < seconds < 10
    # The hops delete their queues when they stop.
    assert not any(queue_exists(amqp_url, queue) for queue in echo_queues(topology))


def test_without_the_second_hop_nothing_answers(amqp_url: str, topology: Topology) -> None:
    with echo_hops(amqp_url, topology, roles=("a",)):
        operator = Operator(amqp_url, topology.exchange)
        with pytest.raises(pika.exceptions.UnroutableError):
            operator.send("bench.echo.nowhere", b"{}")  # mandatory: a wrong key fails at once
        sent = operator.send(ECHO_REQUEST, b"{}")
        with pytest.raises(SystemExit, match="1 of 1 replies missing"):
            operator.wait([sent], timeout=2)
        operator.close()


def test_the_bus_echo_answers_each_request_once_its_way_back(
    amqp_url: str, topology: Topology, tmp_path: Path
) -> None:
    body = EchoRequest(payload="x" * 700).model_dump_json().encode()
    with bus_echo_hops(amqp_url, topology, tmp_path):
        operator = Operator(amqp_url, topology.exchange)
        sent = [operator.send(BUS_ECHO_REQUEST, body) for _ in range(20)]
        replies = operator.wait(sent, timeout=20)
        operator.connection.process_data_events(time_limit=0.5)  # a second answer, if any
        operator.close()
    assert all(reply["ok"] for reply in replies)
    assert len({reply["result"]["token"] for reply in replies}) == 20
    assert operator.answers == 20
    # Hop a forgot each request once it was answered.
    engine = create_engine(f"sqlite:///{tmp_path / 'echo-a.db'}")
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(waiting)).scalar() == 0
    engine.dispose()
