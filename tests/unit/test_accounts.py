"""The broker users come from one source: compose's file is generated, tests use the same."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from directdl.runtime.accounts import compose_definitions, password_hash
from directdl_testing.accounts import TEST_NAMES, TestAccounts
from directdl_testing.isolation import unique_topology

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DEFINITIONS = ROOT / "deploy/rabbitmq/definitions.json"


def test_composes_definitions_are_the_generated_ones() -> None:
    committed = json.loads(DEFINITIONS.read_text())
    assert committed == compose_definitions(["host-1", "host-2"]), (
        "deploy/rabbitmq/definitions.json is stale: run `make docs`"
    )


def test_a_password_hash_is_rabbitmqs_salted_sha256_and_the_same_on_every_run() -> None:
    first = password_hash("registration", "registration-dev")
    assert first == password_hash("registration", "registration-dev")
    assert first != password_hash("certificate", "registration-dev")


def test_the_test_vhost_grants_follow_each_tests_own_names() -> None:
    topology = unique_topology()
    accounts = TestAccounts("amqp://guest:guest@127.0.0.1:5672/")
    registration = accounts.accounts["registration"].grant
    agent = accounts.accounts["host-agent-host-1"].grant
    assert re.search(registration.read, topology.queue("registration", "commands"))
    assert re.search(registration.configure, topology.exchange)
    assert not re.search(registration.read, topology.queue("certificate", "commands"))
    assert re.search(agent.read, topology.queue("host-agent-host-1", "commands"))
    assert not re.search(agent.read, topology.queue("host-agent-host-2", "commands"))
    assert TEST_NAMES.topic_exchange is None
    assert accounts.url("host-agent-host-1") == (
        "amqp://host-agent-host-1:host-agent-host-1-dev@127.0.0.1:5672/directdl-test"
    )
