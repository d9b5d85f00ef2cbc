"""What broker-init and db-init apply: every account of accounts.py, with a password from .env."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from directdl.contracts.senders import CENTRAL, SERVICES
from directdl.runtime.accounts import compose_definitions, deployment
from directdl.runtime.docs import COMPOSE_HOSTS
from directdl.runtime.provision import (
    SAFE_PASSWORD,
    SECRETS_KEY_VARIABLE,
    ProvisionError,
    amqp_password_variable,
    database_roles,
    db_password_variable,
    env_example,
    main,
    password,
    postgres_password_variable,
    with_passwords,
)

pytestmark = pytest.mark.unit


def example() -> dict[str, str]:
    lines = env_example(COMPOSE_HOSTS).splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_the_env_example_has_a_safe_password_for_every_broker_user_and_database_role() -> None:
    env = example()
    users = [account.user for account in deployment(COMPOSE_HOSTS)]
    assert "host-agent-host-2" in users
    expected = {amqp_password_variable(user) for user in users}
    expected |= {db_password_variable(r.role) for r in database_roles(env)}
    expected |= {postgres_password_variable(), "GRAFANA_ADMIN_PASSWORD"}
    expected |= {"RABBITMQ_ERLANG_COOKIE", SECRETS_KEY_VARIABLE}
    assert set(env) == expected
    key = env.pop(SECRETS_KEY_VARIABLE)
    assert all(SAFE_PASSWORD.fullmatch(value) for value in env.values())
    assert len(set(env.values())) == len(env)
    # The gateway's key is no password, so in no URL: a Fernet key, the same at every run.
    Fernet(key)
    assert example()[SECRETS_KEY_VARIABLE] == key


def test_variables_are_named_after_the_user_or_role() -> None:
    assert amqp_password_variable("host-agent-host-1") == "HOST_AGENT_HOST_1_AMQP_PASSWORD"
    assert amqp_password_variable("sync-scheduler") == "SYNC_SCHEDULER_AMQP_PASSWORD"
    assert [role.role for role in database_roles(example())] == [
        "registration",
        "certificate",
        "sync_scheduler",
        "api",
    ]
    assert len(SERVICES) == 3 and len(CENTRAL) == 4
    assert db_password_variable("sync_scheduler") == "SYNC_SCHEDULER_DB_PASSWORD"


def test_each_user_of_the_definitions_gets_its_own_password() -> None:
    definitions = compose_definitions(COMPOSE_HOSTS)
    env = example()
    filled = with_passwords(definitions, env)
    for user in filled["users"]:
        assert user["password"] == env[amqp_password_variable(user["name"])]
    assert filled["permissions"] == definitions["permissions"]
    assert all("password" not in user for user in definitions["users"]), "input changed"


def test_a_missing_password_names_its_variable_and_the_one_step() -> None:
    env = example()
    del env["CLI_AMQP_PASSWORD"]
    with pytest.raises(ProvisionError, match=r"CLI_AMQP_PASSWORD is not set: `cp \.env\.example"):
        with_passwords(compose_definitions(COMPOSE_HOSTS), env)
    with pytest.raises(ProvisionError, match="REGISTRATION_DB_PASSWORD is not set"):
        database_roles(example() | {"REGISTRATION_DB_PASSWORD": ""})


@pytest.mark.parametrize(
    "value", ["p@ssword:1234/x", "short-pass", "has space in it", "a$b$c$d$e$f$"]
)
def test_a_password_that_would_break_a_url_or_is_short_is_refused(value: str) -> None:
    with pytest.raises(ProvisionError, match="goes into URLs"):
        password({"X": value}, "X")
    assert password({"X": "0123456789abcdef"}, "X") == "0123456789abcdef"


def test_the_command_stops_before_any_connection_when_a_password_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    definitions = tmp_path / "definitions.json"
    definitions.write_text(json.dumps(compose_definitions(COMPOSE_HOSTS)))
    env = example()
    del env["HOST_AGENT_HOST_2_AMQP_PASSWORD"]
    # Port 9 refuses connections: had it connected, the message would say so instead.
    argv = ["broker", "--api", "http://127.0.0.1:9", "--definitions", str(definitions)]
    assert main(argv, env) == 1
    assert "HOST_AGENT_HOST_2_AMQP_PASSWORD is not set" in capsys.readouterr().err
    assert main(["database", "--host", "127.0.0.1", "--port", "9"], {}) == 1
    assert "POSTGRES_PASSWORD is not set" in capsys.readouterr().err
