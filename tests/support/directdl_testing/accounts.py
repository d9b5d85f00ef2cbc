"""Broker users for tests: each service, each host agent of HOST_IDS and an operator, with
the permissions a deployment gives them, in a vhost of the tests' own."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

from directdl.bus.connection import broker_urls, broker_user
from directdl.bus.tables import AGENT, service_tables
from directdl.bus.topology import Topology
from directdl.contracts.senders import SERVICES
from directdl.runtime.accounts import (
    Account,
    Names,
    ProvisioningError,
    account_url,
    definitions,
    gateway_account,
    host_account,
    operator_account,
    provision,
    service_account,
)
from directdl_testing.isolation import HOST_IDS

TEST_VHOST = "directdl-test"
# Every test names its own exchange and queues (isolation.unique_topology); the permissions
# are the deployment's, with those names as patterns.
TEST_NAMES = Names(r"test-[0-9a-f]{10}", r"test-[0-9a-f]{10}\.", topic_exchange=None)


class TestAccounts:
    """The users exist on the broker once `provision()` has run; `url(user)` connects as one."""

    __test__ = False  # not a test class, despite its name

    def __init__(self, base_url: str, vhost: str = TEST_VHOST, node: str | None = None) -> None:
        self.base_url = base_url
        self.vhost = vhost
        self.node = node
        self.accounts = {a.user: a for a in self._accounts(TEST_NAMES)}

    @staticmethod
    def _accounts(names: Names) -> list[Account]:
        return [
            operator_account(names),
            *(service_account(service, names) for service in SERVICES),
            gateway_account(names),
            *(host_account(host_id, names) for host_id in HOST_IDS),
        ]

    @property
    def admin_url(self) -> str:
        """The base URL's own user (an administrator), in the tests' vhost."""
        return ",".join(
            urlunsplit(urlsplit(one)._replace(path="/" + self.vhost))
            for one in broker_urls(self.base_url)
        )

    def url(self, user: str) -> str:
        return account_url(self.base_url, self.accounts[user], self.vhost)

    def provision(self) -> None:
        admin = {
            "user": broker_user(self.base_url),
            "vhost": self.vhost,
            "configure": ".*",
            "write": ".*",
            "read": ".*",
        }
        provision(
            self.accounts.values(), self.vhost, node=self.node, extra={"permissions": [admin]}
        )

    def restrict_topics(self, topology: Topology) -> None:
        """Give the host agents and the operator the topic permissions of a deployment on
        this topology's exchange, as compose does on `directdl`."""
        names = Names(TEST_NAMES.exchange, TEST_NAMES.queue_prefix, topology.exchange)
        provision(self._accounts(names), self.vhost, node=self.node)


def host_accounts(host_ids: Iterable[str], names: Names) -> list[Account]:
    """The accounts a deployment gives these hosts' agents, the agent's table read once."""
    table = service_tables()[AGENT]
    return [host_account(host_id, names, table=table) for host_id in host_ids]


def provision_many(accounts: Iterable[Account], vhost: str = "/", *, node: str) -> None:
    """`provision` for thousands of users: one import of salted hashes, which the node stores
    as they are, where plain passwords would each be hashed on import."""
    document = definitions(accounts, vhost, hashed=True)
    done = subprocess.run(
        ["rabbitmqctl", "-n", node, "-q", "import_definitions"],
        input=json.dumps(document),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise ProvisioningError(
            f"rabbitmqctl import_definitions exited {done.returncode} for "
            f"{len(document['users'])} users: {(done.stderr or done.stdout).strip()[:300]}"
        )
