"""AMQP_URL names one broker or a cluster's nodes; every node is reached as one user."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from directdl.bus.connection import broker_urls, broker_user, connection_parameters, redact
from directdl.runtime.settings import ServiceSettings

pytestmark = pytest.mark.unit

NODES = "amqp://registration:s3cret@rabbit-1:5672/, amqp://registration:s3cret@rabbit-2:5673/"


def test_one_url_is_one_broker() -> None:
    assert broker_urls("amqp://guest:guest@127.0.0.1:5672/") == [
        "amqp://guest:guest@127.0.0.1:5672/"
    ]


def test_commas_separate_the_nodes_of_a_cluster() -> None:
    assert broker_urls(NODES) == [
        "amqp://registration:s3cret@rabbit-1:5672/",
        "amqp://registration:s3cret@rabbit-2:5673/",
    ]
    assert broker_user(NODES) == "registration"


def test_nodes_reached_as_different_users_are_refused() -> None:
    with pytest.raises(ValueError, match=r"2 users \(alice, bob\)"):
        broker_urls("amqp://alice:a@rabbit-1/,amqp://bob:b@rabbit-2/")


def test_no_url_at_all_is_refused() -> None:
    with pytest.raises(ValueError, match="no broker URL"):
        broker_urls(" , ")


def test_redact_hides_every_nodes_password() -> None:
    assert redact(NODES) == (
        "amqp://registration:***@rabbit-1:5672/,amqp://registration:***@rabbit-2:5673/"
    )


def test_each_node_keeps_its_own_port_and_our_defaults() -> None:
    params = [connection_parameters(one, "registration") for one in broker_urls(NODES)]
    assert [(p.host, p.port) for p in params] == [("rabbit-1", 5672), ("rabbit-2", 5673)]
    assert all(p.heartbeat == 30 and p.connection_attempts == 1 for p in params)


def test_a_service_refuses_to_start_on_nodes_of_different_users() -> None:
    with pytest.raises(ValidationError, match="every node of a cluster must be reached as"):
        ServiceSettings(AMQP_URL="amqp://alice:a@rabbit-1/,amqp://bob:b@rabbit-2/")
    assert ServiceSettings(AMQP_URL=NODES).amqp_url == NODES


def test_redact_of_a_bad_list_still_hides_the_passwords() -> None:
    assert redact("amqp://alice:a@rabbit-1/,amqp://bob:b@rabbit-2/") == (
        "amqp://alice:***@rabbit-1/,amqp://bob:***@rabbit-2/"
    )
