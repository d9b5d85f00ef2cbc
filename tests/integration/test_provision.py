"""broker-init and db-init for real: a private RabbitMQ node with its management API, and the
local PostgreSQL with throwaway roles."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pika
import pika.exceptions
import psycopg
import pytest
import requests
from sqlalchemy.engine import make_url

from directdl.runtime.accounts import ADMIN, compose_definitions
from directdl.runtime.docs import COMPOSE_HOSTS
from directdl.runtime.provision import (
    DatabaseRole,
    ProvisionError,
    amqp_password_variable,
    import_definitions,
    main,
    provision_databases,
    with_passwords,
)
from directdl_testing.postgres import DEFAULT_URL
from directdl_testing.private_broker import PrivateBroker, _free_port

pytestmark = pytest.mark.integration


class ManagedBroker(PrivateBroker):
    """A private node with the management plugin, its API on a free loopback port."""

    def __init__(self) -> None:
        super().__init__()
        self.management_port = _free_port()

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.management_port}"

    # The parent's is static; this one needs the port, and the parent calls it on self.
    def _prepare_base_dir(self, base: Path, file_limit: int | None) -> None:  # type: ignore[override]
        PrivateBroker._prepare_base_dir(base, file_limit)
        # Rewritten in place, so the files keep the owner the node runs as.
        (base / "enabled_plugins").write_text("[rabbitmq_management].\n")
        (base / "rabbitmq.conf").write_text(
            f"management.tcp.ip = 127.0.0.1\nmanagement.tcp.port = {self.management_port}\n"
        )


@pytest.fixture(scope="module")
def broker() -> Iterator[ManagedBroker]:
    node = ManagedBroker()
    with node:
        yield node


def passwords(tag: str) -> dict[str, str]:
    users = [user["name"] for user in compose_definitions(COMPOSE_HOSTS)["users"]]
    return {amqp_password_variable(user): f"{user}-{tag}" for user in users}


def connects(broker: ManagedBroker, user: str, secret: str) -> bool:
    url = f"amqp://{quote(user, safe='')}:{secret}@127.0.0.1:{broker.port}/"
    try:
        pika.BlockingConnection(pika.URLParameters(url)).close()
    except pika.exceptions.ProbableAuthenticationError:
        return False
    return True


def test_broker_init_creates_every_user_with_its_grants_and_rotates_passwords(
    broker: ManagedBroker, tmp_path: Path
) -> None:
    definitions = compose_definitions(COMPOSE_HOSTS)
    first = passwords(uuid.uuid4().hex)
    # guest bootstraps admin, as RABBITMQ_DEFAULT_USER does in compose; from then on the
    # command signs in as admin, as compose's broker-init does.
    import_definitions(broker.api, "guest", with_passwords(definitions, first), admin="guest")
    path = tmp_path / "definitions.json"
    path.write_text(json.dumps(definitions))
    assert main(["broker", "--api", broker.api, "--definitions", str(path)], first) == 0

    assert connects(broker, "host-agent-host-1", first["HOST_AGENT_HOST_1_AMQP_PASSWORD"])
    assert not connects(broker, "host-agent-host-1", first["HOST_AGENT_HOST_2_AMQP_PASSWORD"])
    auth = (ADMIN, first[amqp_password_variable(ADMIN)])
    granted = requests.get(f"{broker.api}/api/permissions/%2F/registration", auth=auth, timeout=10)
    expected = next(p for p in definitions["permissions"] if p["user"] == "registration")
    assert {k: granted.json()[k] for k in ("configure", "write", "read")} == {
        k: expected[k] for k in ("configure", "write", "read")
    }
    topic = requests.get(f"{broker.api}/api/topic-permissions/%2F/host-agent-host-2", auth=auth)
    assert topic.json()[0]["write"] == next(
        t["write"] for t in definitions["topic_permissions"] if t["user"] == "host-agent-host-2"
    )
    exchange = requests.get(f"{broker.api}/api/exchanges/%2F/directdl", auth=auth, timeout=10)
    assert exchange.json()["type"] == "topic"

    # A password changed in .env replaces the old one at the next run.
    second = first | {"REGISTRATION_AMQP_PASSWORD": f"rotated-{uuid.uuid4().hex}"}
    assert main(["broker", "--api", broker.api, "--definitions", str(path)], second) == 0
    assert connects(broker, "registration", second["REGISTRATION_AMQP_PASSWORD"])
    assert not connects(broker, "registration", first["REGISTRATION_AMQP_PASSWORD"])


def test_broker_init_fails_loudly_on_a_wrong_admin_password(broker: ManagedBroker) -> None:
    definitions = with_passwords(compose_definitions(COMPOSE_HOSTS), passwords("x" * 12))
    with pytest.raises(ProvisionError, match=r"refused the definitions \(401\)"):
        import_definitions(broker.api, "not-the-password", definitions)
    with pytest.raises(ProvisionError, match="no RabbitMQ management API"):
        import_definitions(f"http://127.0.0.1:{_free_port()}", "whatever", definitions)


@pytest.fixture
def postgres() -> Iterator[tuple[str, list[DatabaseRole]]]:
    """The local server as its superuser, and two role names no one else uses."""
    url = make_url(os.environ.get("TEST_POSTGRES_URL", DEFAULT_URL)).set(drivername="postgresql")
    conninfo = url.render_as_string(hide_password=False)
    roles = [DatabaseRole(f"directdl_test_{uuid.uuid4().hex[:12]}", "p" * 16) for _ in range(2)]
    yield conninfo, roles
    with psycopg.connect(conninfo, autocommit=True) as connection:
        for role in roles:
            connection.execute(f'DROP DATABASE IF EXISTS "{role.database}" WITH (FORCE)')
            connection.execute(f'DROP ROLE IF EXISTS "{role.role}"')


def test_db_init_gives_each_service_a_role_and_a_database_only_it_reaches(
    postgres: tuple[str, list[DatabaseRole]],
) -> None:
    conninfo, roles = postgres
    provision_databases(conninfo, roles)
    mine, other = roles
    with psycopg.connect(conninfo, autocommit=True) as connection:

        def one(query: str, *args: str) -> object:
            row = connection.execute(query, args).fetchone()
            assert row is not None, query
            return row[0]

        owner = "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s"
        assert one(owner, mine.database) == mine.role
        assert one("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", mine.role) is True
        hashed = "SELECT rolpassword FROM pg_authid WHERE rolname = %s"
        first = one(hashed, mine.role)
        assert str(first).startswith("SCRAM-SHA-256$")
        reach = "SELECT has_database_privilege(%s, %s, 'CONNECT')"
        assert one(reach, mine.role, mine.database) is True
        assert one(reach, other.role, mine.database) is False, "PUBLIC may still connect"

        # Run again, as every `up` does: the password changes, nothing else fails.
        provision_databases(conninfo, [DatabaseRole(mine.role, "q" * 16), other])
        assert one(hashed, mine.role) != first
        assert one(owner, mine.database) == mine.role


def test_db_init_fails_loudly_when_the_server_refuses() -> None:
    with pytest.raises(ProvisionError, match="PostgreSQL refused"):
        provision_databases(f"host=127.0.0.1 port={_free_port()} user=postgres", [])
