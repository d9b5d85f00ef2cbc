"""`discover()` finds the running services over the real broker, at health URLs that answer."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pika
import pytest
import requests
from pika.exceptions import AMQPError

from directdl.bus.discovery import discover
from directdl.bus.topology import Topology
from directdl.contracts.service import ServiceAnnounced
from directdl_testing.accounts import TestAccounts
from directdl_testing.recorder import MessageRecorder
from directdl_testing.services import running
from host_agent.bootstrap import bootstrap as agent_bootstrap
from host_agent.config import HostAgentSettings
from registration.bootstrap import bootstrap as registration_bootstrap
from registration.config import RegistrationSettings

pytestmark = pytest.mark.integration


def names(broker_accounts: TestAccounts, topology: Topology, user: str) -> dict[str, Any]:
    return {
        "AMQP_URL": broker_accounts.url(user),
        "DIRECTDL_EXCHANGE": topology.exchange,
        "DIRECTDL_QUEUE_PREFIX": topology.queue_prefix,
        "health_port": 0,
    }


def test_discover_finds_a_service_and_a_host_agent_whose_health_answers(
    broker_accounts: TestAccounts, topology: Topology, data_dir: Path
) -> None:
    registration = RegistrationSettings(
        **names(broker_accounts, topology, "registration"),
        DIRECTDL_DATA_DIR=data_dir / "registration",
        check_urls=False,
    )
    agent = HostAgentSettings(
        **names(broker_accounts, topology, "host-agent-host-1"),
        DIRECTDL_DATA_DIR=data_dir / "agent",
        host_id="host-1",
    )
    with running(registration_bootstrap(registration)), running(agent_bootstrap(agent)) as run:
        found = discover(broker_accounts.url("cli"), topology, seconds=2.0)

        assert [a.service for a in found] == ["host-agent-host-1", "registration"]
        assert found[0].host_id == "host-1"
        assert found[0].health_url == f"http://127.0.0.1:{run.health.port}"
        for announced in found:
            assert announced.health_url is not None
            ready = requests.get(f"{announced.health_url}/readyz", timeout=5)
            assert ready.status_code == 200, (announced.service, ready.text)


def test_a_service_announces_itself_as_it_starts_and_again_when_asked(
    broker_accounts: TestAccounts, topology: Topology, data_dir: Path, recorder: MessageRecorder
) -> None:
    settings = RegistrationSettings(
        **names(broker_accounts, topology, "registration"),
        DIRECTDL_DATA_DIR=data_dir,
        check_urls=False,
        health_url="http://registration.example:18081",
    )
    with running(registration_bootstrap(settings)) as service:
        (started,) = recorder.expect(ServiceAnnounced.routing_key)
        (answer,) = discover(broker_accounts.url("cli"), topology, seconds=1.0)

    assert started.properties.user_id == "registration"  # vouched for by the broker
    assert started.body["instance"] == answer.instance == service.announcer.instance
    assert answer.health_url == "http://registration.example:18081"


def test_discover_finds_nothing_where_no_service_listens(
    broker_accounts: TestAccounts, topology: Topology, amqp_url: str
) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        topology.declare_exchanges(connection.channel())
    finally:
        connection.close()

    assert discover(broker_accounts.url("cli"), topology, seconds=0.5) == []


def test_discover_raises_the_broker_error_where_no_service_ever_started(
    broker_accounts: TestAccounts, topology: Topology
) -> None:
    with pytest.raises(AMQPError, match="no exchange"):
        discover(broker_accounts.url("cli"), topology, seconds=0.5)


def test_an_announcement_one_process_makes_for_another_is_ignored(
    broker_accounts: TestAccounts, topology: Topology, data_dir: Path
) -> None:
    settings = RegistrationSettings(
        **names(broker_accounts, topology, "registration"),
        DIRECTDL_DATA_DIR=data_dir,
        check_urls=False,
    )
    # A host agent may publish service.announced, and the broker vouches for its user_id;
    # here it claims to be registration, with a health URL of its choosing.
    forged = ServiceAnnounced(
        service="registration",
        instance="forged",
        health_url="http://127.0.0.1:1/",
        version="0",
        started_at="2026-01-01T00:00:00Z",
    )

    def forge() -> None:
        connection = pika.BlockingConnection(
            pika.URLParameters(broker_accounts.url("host-agent-host-1"))
        )
        try:
            connection.channel().basic_publish(
                topology.exchange,
                ServiceAnnounced.routing_key,
                forged.model_dump_json().encode(),
                pika.BasicProperties(user_id="host-agent-host-1", message_id="forged-1"),
            )
        finally:
            connection.close()

    with running(registration_bootstrap(settings)):
        # Published while discover collects answers (it binds its queue at once), so heard.
        forger = threading.Timer(0.7, forge)
        forger.start()
        found = discover(broker_accounts.url("cli"), topology, seconds=2.0)
        forger.join()

    assert [(a.service, a.instance != "forged") for a in found] == [("registration", True)]
