"""The broker users and what each may touch: the one source of compose's definitions.json and
of what `make run` and the tests provision.

Each service connects as the user named after it, each host agent as `host-agent-<host id>`,
and operators as users of their own. The permissions follow from each service's dispatch
table: the queues it declares, and for a host agent the keys it publishes and binds.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from directdl.bus.connection import broker_urls
from directdl.bus.dispatch import Handlers
from directdl.bus.tables import AGENT, roles_of, service_tables
from directdl.bus.topology import Topology
from directdl.contracts.roles import Roles
from directdl.contracts.senders import GATEWAY, SERVICES, Operators, host_user

ADMIN = "admin"
OPERATOR = "cli"
# Server-named queues: what `directdl events` and a deploy's progress bar consume from.
SERVER_NAMED = r"amq\.gen-.*"


def dev_password(user: str) -> str:
    """The development password of a user, as compose.yaml's header lists them."""
    return f"{user}-dev"


@dataclass(frozen=True)
class Names:
    """How resources are named in a vhost, as regular expressions: literal names for a
    deployment, patterns for a test vhost in which every test names its own exchange."""

    exchange: str
    queue_prefix: str
    # Topic permissions name one exchange exactly; None where exchanges are per test.
    topic_exchange: str | None

    @classmethod
    def of(cls, topology: Topology) -> Names:
        return cls(_escape(topology.exchange), _escape(topology.queue_prefix), topology.exchange)


@dataclass(frozen=True)
class Grant:
    """RabbitMQ's three permissions in a vhost, each a regular expression on resource names."""

    configure: str
    write: str
    read: str


@dataclass(frozen=True)
class TopicGrant:
    """Topic permissions on one exchange: which routing keys may be published and bound."""

    exchange: str
    write: str
    read: str


@dataclass(frozen=True)
class Account:
    user: str
    password: str
    grant: Grant
    topic: TopicGrant | None = None
    tags: tuple[str, ...] = ()


def _escape(name: str) -> str:
    # Hyphens are literal outside brackets; leaving them bare keeps the patterns readable.
    return re.escape(name).replace("\\-", "-")


def _anchored(*alternatives: str) -> str:
    # RabbitMQ searches rather than matches, so an unanchored pattern would allow any name
    # that merely contains an allowed one.
    return f"^({'|'.join(alternatives)})$"


def _keys(patterns: Iterable[str]) -> str:
    escaped = sorted({_escape(p).replace(r"\{host_id\}", "{host}") for p in patterns})
    return _anchored(*escaped)


# What a consumer declares and reads. A queue that dead-letters, as a retry queue does, needs
# read as well as configure to be declared.
Patterns = tuple[tuple[str, ...], tuple[str, ...]]


def _own_queues(stem: str, purposes: Iterable[str]) -> Patterns:
    """`<stem>.<purpose>` and its `.retry` for each purpose, and `<stem>.dead`."""
    queues = rf"{stem}\.({'|'.join(sorted(purposes))})(\.retry)?"
    return (queues, rf"{stem}\.dead"), (queues,)


def _shared_queue(queue: str) -> Patterns:
    """A queue every service takes turns on, with its own `.retry` and `.dead`."""
    return (rf"{queue}(\.retry|\.dead)?",), (rf"{queue}(\.retry)?",)


def service_account(
    service: str, names: Names, password: str | None = None, table: Handlers | None = None
) -> Account:
    """A central service: the queues its dispatch table declares (its own, and the shared
    ones it takes turns on), their dead letters, and the exchanges."""
    table = table or service_tables()[service]
    parts = [
        _own_queues(f"{names.queue_prefix}{_escape(service)}", table.queues),
        *(_shared_queue(f"{names.queue_prefix}{_escape(name)}") for name in sorted(table.shared)),
    ]
    declared = [pattern for part in parts for pattern in part[0]]
    consumed = [pattern for part in parts for pattern in part[1]]
    exchanges = (names.exchange, rf"{names.exchange}\.dlx")
    return Account(
        service,
        password or dev_password(service),
        Grant(
            configure=_anchored(*exchanges, *declared),
            write=_anchored(*exchanges, r"amq\.default", *declared),
            read=_anchored(*exchanges, *consumed),
        ),
    )


def host_account(
    host_id: str, names: Names, password: str | None = None, table: Handlers | None = None
) -> Account:
    """A host agent: its own queues, publishing only what its table publishes (what a host
    reports about itself), and binding only the keys its table consumes, addressed to it."""
    table = table or service_tables()[AGENT]
    user = host_user(host_id)
    declared, consumed = _own_queues(f"{names.queue_prefix}{_escape(user)}", table.queues)
    exchanges = (names.exchange, rf"{names.exchange}\.dlx")
    topic = None
    if names.topic_exchange is not None:
        topic = TopicGrant(
            names.topic_exchange,
            write=_keys(m.routing_key for m in table.publishes()),
            read=_keys(m.routing_key for m in table.consumes()).replace("{host}", _escape(host_id)),
        )
    return Account(
        user,
        password or dev_password(user),
        Grant(
            configure=_anchored(*exchanges, *declared),
            write=_anchored(*exchanges, r"amq\.default", *declared),
            read=_anchored(*exchanges, *consumed),
        ),
        topic,
    )


def operator_commands(roles: Roles | None = None) -> list[str]:
    """The routing keys of the commands some service takes from operators."""
    known = roles or roles_of(service_tables())
    return [m.routing_key for m in known.consumers if isinstance(m.sent_by, Operators)]


def operator_account(
    names: Names, user: str = OPERATOR, password: str | None = None, roles: Roles | None = None
) -> Account:
    """An operator's tools: the commands some service takes from operators, replies and
    server-named queues to watch the bus; no service's queue."""
    topic = None
    if names.topic_exchange is not None:
        topic = TopicGrant(names.topic_exchange, write=_keys(operator_commands(roles)), read="^.*$")
    return Account(
        user,
        password or dev_password(user),
        Grant(
            configure=_anchored(SERVER_NAMED),
            write=_anchored(names.exchange, SERVER_NAMED),
            read=_anchored(names.exchange, SERVER_NAMED),
        ),
        topic,
    )


def gateway_account(
    names: Names, password: str | None = None, roles: Roles | None = None
) -> Account:
    """The CloudStack API gateway: a service's own queues, for its table, and an operator's
    commands, replies and server-named queues, for the clients it speaks for."""
    table = service_tables()[GATEWAY]
    declared, consumed = _own_queues(f"{names.queue_prefix}{_escape(GATEWAY)}", table.queues)
    exchanges = (names.exchange, rf"{names.exchange}\.dlx")
    topic = None
    if names.topic_exchange is not None:
        published = [m.routing_key for m in table.publishes()]
        write = _keys([*operator_commands(roles), *published])
        topic = TopicGrant(names.topic_exchange, write=write, read="^.*$")
    return Account(
        GATEWAY,
        password or dev_password(GATEWAY),
        Grant(
            configure=_anchored(*exchanges, *declared, SERVER_NAMED),
            write=_anchored(*exchanges, r"amq\.default", *declared, SERVER_NAMED),
            read=_anchored(*exchanges, *consumed, SERVER_NAMED),
        ),
        topic,
    )


def admin_account(password: str | None = None) -> Account:
    return Account(
        ADMIN, password or dev_password(ADMIN), Grant(".*", ".*", ".*"), None, ("administrator",)
    )


def deployment(host_ids: Iterable[str], topology: Topology | None = None) -> list[Account]:
    """Everyone of a deployment with these hosts, with their development passwords."""
    names = Names.of(topology or Topology())
    return [
        admin_account(),
        operator_account(names),
        *(service_account(service, names) for service in SERVICES),
        gateway_account(names),
        *(host_account(host_id, names) for host_id in host_ids),
    ]


def password_hash(user: str, password: str) -> str:
    """RabbitMQ's salted SHA-256. The salt comes from the user name, so that the generated
    definitions are the same on every run and a change to them shows in a diff."""
    salt = hashlib.sha256(user.encode()).digest()[:4]
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def compose_definitions(host_ids: Iterable[str]) -> dict[str, Any]:
    """deploy/rabbitmq/definitions.json: the deployment's users without passwords, which
    compose's broker-init adds from .env (directdl.runtime.provision), and the exchanges, so
    that the CLI can publish before the first service has declared them."""
    topology = Topology()
    exchanges = [
        {"name": name, "vhost": "/", "type": kind, "durable": True, "auto_delete": False}
        | {"internal": False, "arguments": {}}
        for name, kind in ((topology.exchange, "topic"), (topology.dead_letter_exchange, "direct"))
    ]
    document = definitions(deployment(host_ids, topology))
    secret = ("password_hash", "hashing_algorithm")
    users = [{k: v for k, v in user.items() if k not in secret} for user in document["users"]]
    return document | {"users": users, "exchanges": exchanges}


def definitions(
    accounts: Iterable[Account], vhost: str = "/", *, hashed: bool = True
) -> dict[str, Any]:
    """RabbitMQ's definitions format: users, the vhost, permissions and topic permissions.
    `hashed` keeps only salted hashes, as a file on disk should."""
    accounts = list(accounts)
    users = []
    for account in accounts:
        user: dict[str, Any] = {"name": account.user, "tags": list(account.tags)}
        if hashed:
            user["password_hash"] = password_hash(account.user, account.password)
            user["hashing_algorithm"] = "rabbit_password_hashing_sha256"
        else:
            user["password"] = account.password
        users.append(user | {"limits": {}})
    return {
        "users": users,
        "vhosts": [
            {"name": vhost, "limits": [], "metadata": {"description": "directdl", "tags": []}}
        ],
        "permissions": [{"user": a.user, "vhost": vhost} | vars(a.grant) for a in accounts],
        "topic_permissions": [
            {"user": a.user, "vhost": vhost} | vars(a.topic) for a in accounts if a.topic
        ],
    }


def account_url(base_url: str, account: Account, vhost: str | None = None) -> str:
    """``base_url`` (host, port, options; each node's, for a cluster) as ``account``, in
    ``vhost`` when given."""
    if "," in base_url:
        return ",".join(account_url(one, account, vhost) for one in broker_urls(base_url))
    parts = urlsplit(base_url)
    where = parts.netloc.rpartition("@")[2]
    netloc = f"{quote(account.user, safe='')}:{quote(account.password, safe='')}@{where}"
    path = parts.path if vhost is None else "/" + quote(vhost, safe="")
    return urlunsplit(parts._replace(netloc=netloc, path=path))


def provision(
    accounts: Iterable[Account],
    vhost: str = "/",
    *,
    node: str | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Create or update these users and their permissions on a local broker node, with
    `rabbitmqctl import_definitions`, which adds to what the node has and removes nothing."""
    document = definitions(accounts, vhost, hashed=False)
    for key, values in (extra or {}).items():
        document[key] = [*document.get(key, []), *values]
    # On stdin: a file would have to be readable by the broker's own user, passwords and all.
    command = ["rabbitmqctl", *(["-n", node] if node else []), "-q", "import_definitions"]
    done = subprocess.run(
        command,
        input=json.dumps(document),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise ProvisioningError(
            f"rabbitmqctl import_definitions exited {done.returncode}: "
            f"{(done.stderr or done.stdout).strip()[:300]}"
        )


class ProvisioningError(RuntimeError):
    """The broker did not take the users: rabbitmqctl is missing, or the node refused."""


def main() -> None:
    """`python -m directdl.runtime.accounts host-1 host-2`: print compose's definitions."""
    import sys

    print(json.dumps(compose_definitions(sys.argv[1:]), indent=2))


if __name__ == "__main__":
    main()
