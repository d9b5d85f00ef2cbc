"""What the running services bind on a real broker is what their tables, the generated
reference and the broker permissions say."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from directdl.bus.dispatch import address_of
from directdl.bus.tables import AGENT, roles_of, service_tables
from directdl.bus.topology import Topology
from directdl.contracts.senders import GATEWAY, host_user
from directdl.runtime.accounts import Names, gateway_account, host_account, service_account
from directdl.runtime.live_settings import SHARED_QUEUE
from directdl_testing.accounts import TestAccounts
from directdl_testing.processes import free_port

pytestmark = pytest.mark.e2e

HOSTS = ("host-1", "host-2")
# module and env prefix of each central service; the agents are started per host below.
CENTRAL = {
    "registration": ("registration", "REGISTRATION"),
    "certificate": ("certificate", "CERTIFICATE"),
    "sync-scheduler": ("sync_scheduler", "SYNC_SCHEDULER"),
    GATEWAY: ("api", "API"),
}
# What the gateway needs to start besides: a key for its secrets (any Fernet key), a port.
GATEWAY_ENV = {"API_SECRETS_KEY": "bXvCPhpjf9OuRnI9fkrEQ9tCtumgFzF3RkmlmYcJbQA="}

Binding = tuple[str, str]  # (queue, routing key)
LIST_BINDINGS = ("rabbitmqctl", "-q", "--formatter", "json", "list_bindings")


def listed_bindings(vhost: str, topology: Topology) -> set[Binding]:
    """The broker's own list of what is bound to the test's exchange."""
    done = subprocess.run(
        [*LIST_BINDINGS, "-p", vhost, "source_name", "destination_name", "routing_key"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return {
        (row["destination_name"], row["routing_key"])
        for row in rows
        if row["source_name"] == topology.exchange
    }


def expected_bindings(topology: Topology) -> dict[str, set[Binding]]:
    """By broker user: the bindings each instance's table asks for."""
    tables = service_tables()
    instances = {name: (tables[name], {"owner": name}) for name in CENTRAL}
    for host_id in HOSTS:
        instances[host_user(host_id)] = (tables[AGENT], {"host_id": host_id})
    expected: dict[str, set[Binding]] = {}
    for user, (table, address) in instances.items():
        own = set(table.queues)
        expected[user] = {
            (topology.queue(user, queue) if queue in own else topology.queue_prefix + queue, key)
            for queue, keys in table.routing_keys(address).items()
            for key in keys
        }
    return expected


@pytest.fixture
def everything(start_service: Callable[..., Any]) -> None:
    for module, prefix in CENTRAL.values():
        extra = GATEWAY_ENV | {"API_LISTEN_PORT": str(free_port())} if module == "api" else {}
        start_service(module, env_prefix=prefix, extra_env=extra)
    for host_id in HOSTS:
        start_service(
            "host_agent",
            env_prefix="HOST_AGENT",
            extra_env={
                "HOST_AGENT_HOST_ID": host_id,
                "HOST_AGENT_ZONE_ID": "zone-1",
                "HOST_AGENT_POOL_ID": f"pool-{host_id}",
            },
        )


@pytest.mark.usefixtures("everything")
def test_bindings_are_what_the_tables_reference_and_permissions_say(
    broker_accounts: TestAccounts, topology: Topology
) -> None:
    """One start of the whole stack, three checks of what the broker then lists."""
    listed = listed_bindings(broker_accounts.vhost, topology)
    assert_the_tables_bind_exactly(listed, topology)
    assert_every_named_consumer_binds(listed, topology)
    assert_within_permissions(listed, topology)


def assert_the_tables_bind_exactly(listed: set[Binding], topology: Topology) -> None:
    expected = expected_bindings(topology)
    wanted = set().union(*expected.values())
    assert listed - wanted == set(), "bound, though no table has it"
    assert wanted - listed == set(), "in a table, though nothing bound it"
    assert len(listed) > 40, listed  # the whole stack, not one stray queue
    print(f"{len(listed)} bindings listed by the broker, each in a table")


def assert_every_named_consumer_binds(listed: set[Binding], topology: Topology) -> None:
    """The generated reference names no consumer that does not bind the key."""
    users = {name: name for name in CENTRAL} | {AGENT: host_user(HOSTS[0])}
    shared = topology.queue_prefix + SHARED_QUEUE
    for model, consumers in roles_of(service_tables()).consumers.items():
        for consumer in consumers:
            user = users[consumer]
            key = address_of(model, {"host_id": HOSTS[0], "owner": user})
            own = {q for q, k in listed if k == key and q.startswith(topology.queue(user, ""))}
            assert own or (shared, key) in listed, f"{consumer} is said to consume {key}"


def assert_within_permissions(listed: set[Binding], topology: Topology) -> None:
    """The generated broker permissions allow every queue and binding the services made."""
    names = Names.of(topology)
    tables = service_tables()
    accounts = {name: service_account(name, names, table=tables[name]) for name in CENTRAL}
    accounts[GATEWAY] = gateway_account(names)
    accounts |= {host_user(h): host_account(h, names, table=tables[AGENT]) for h in HOSTS}
    expected = expected_bindings(topology)
    for user, bindings in expected.items():
        account = accounts[user]
        # What the broker lists, not what the table says: the tables are checked above.
        for queue, key in bindings & listed:
            assert re.search(account.grant.configure, queue), (user, queue)
            assert re.search(account.grant.read, queue), (user, queue)
            if account.topic is not None:
                assert re.search(account.topic.read, key), (user, key)
    # Nor may an agent bind what is addressed to another host (events every agent hears,
    # such as template.deleted, both bind).
    one, other = (accounts[host_user(h)] for h in HOSTS)
    assert one.topic is not None
    own_keys = {key for _queue, key in expected[one.user]}
    addressed_to_other = {key for _queue, key in expected[other.user] & listed} - own_keys
    assert addressed_to_other, "the other agent binds keys of its own"
    for key in addressed_to_other:
        assert not re.search(one.topic.read, key), key
