"""A broker outage behind the gateway: cs gets CloudStack's 534 with a clear text within its
own timeout, never a hang, and the gateway serves again once the broker is back; a connection
the broker closed meanwhile is replaced without the client noticing."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from cs import CloudStack, CloudStackApiException

from directdl.bus.client import BusClient
from directdl.bus.topology import Topology
from directdl.contracts.apikey import ApiKeyCreated, CreateApiKey
from directdl_testing.accounts import TestAccounts
from directdl_testing.private_broker import PrivateBroker
from directdl_testing.processes import ServiceProcess, free_port

pytestmark = pytest.mark.e2e

SECRETS_KEY = "bXvCPhpjf9OuRnI9fkrEQ9tCtumgFzF3RkmlmYcJbQA="
CS_TIMEOUT_S = 10  # cs's own default: the answer must come before it gives up


@pytest.fixture(scope="module")
def node() -> Iterator[PrivateBroker]:
    with PrivateBroker() as broker:
        yield broker


# The suite's fixtures on this node instead of the shared broker, which is never stopped.
@pytest.fixture(scope="module")
def broker_accounts(node: PrivateBroker) -> TestAccounts:
    accounts = TestAccounts(node.url, node=node.node)
    accounts.provision()
    return accounts


@pytest.fixture(scope="module")
def amqp_url(broker_accounts: TestAccounts) -> str:
    return broker_accounts.admin_url


def test_a_broker_outage_answers_534_at_once_and_the_gateway_recovers(
    node: PrivateBroker,
    broker_accounts: TestAccounts,
    topology: Topology,
    start_service: Callable[..., ServiceProcess],
) -> None:
    start_service("registration", extra_env={"REGISTRATION_CHECK_URLS": "false"})
    port = free_port()
    gateway = start_service(
        "api",
        env_prefix="API",
        # One HTTP thread: every request goes over the one connection this test closes.
        extra_env={
            "API_LISTEN_PORT": str(port),
            "API_SECRETS_KEY": SECRETS_KEY,
            "API_HTTP_THREADS": "1",
        },
    )
    with BusClient(broker_accounts.url("cli"), topology) as client:
        created = ApiKeyCreated.model_validate(client.call(CreateApiKey(name="ops")).result)
    api = CloudStack(
        endpoint=f"http://127.0.0.1:{port}/client/api",
        key=created.key.api_key,
        secret=created.secret_key,
        timeout=CS_TIMEOUT_S,
    )
    assert api.listTemplates(templatefilter="all") == {}

    # As the broker does to a connection idle past two heartbeats: the next request gets a
    # new one, and its answer.
    node.ctl("close_all_user_connections", "api", "as if idle too long")
    assert api.listTemplates(templatefilter="all") == {}
    assert gateway.find_logs("bus.reconnecting", routing_key="template.list")

    node.stop_app()
    try:
        began = time.monotonic()
        with pytest.raises(CloudStackApiException) as refused:
            api.listTemplates(templatefilter="all")
        took = time.monotonic() - began
    finally:
        node.start_app()
    error = refused.value.error
    assert error["errorcode"] == 534 and error["cserrorcode"] == 4380, error
    assert "message bus" in error["errortext"] and "template.list" in error["errortext"]
    assert "password" not in error["errortext"] and created.secret_key not in error["errortext"]
    assert took < CS_TIMEOUT_S / 2, f"the refusal took {took:.1f} s"

    # Back: each HTTP thread opens a connection of its own again at its next request.
    deadline = time.monotonic() + 30
    while True:
        try:
            assert api.listTemplates(templatefilter="all") == {}
            break
        except CloudStackApiException as err:
            assert err.error["errorcode"] == 534, err.error
            assert time.monotonic() < deadline, "the gateway never served again"
            time.sleep(0.5)
