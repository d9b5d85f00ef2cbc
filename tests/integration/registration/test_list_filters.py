"""template.list and deploy.list by id prefix over RabbitMQ, on PostgreSQL's LIKE."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from directdl.bus.client import BusClient
from directdl.contracts import deploy
from directdl.contracts import template as msg
from directdl_testing.services import running
from registration.bootstrap import bootstrap
from registration.config import RegistrationSettings

pytestmark = pytest.mark.integration


def register(client: BusClient, name: str) -> str:
    command = msg.RegisterTemplate(
        name=name,
        url="nfs://filer/export/t.qcow2",
        zone_id="z1",
        hypervisor="KVM",
        format="QCOW2",
    )
    reply = client.call(command)
    assert reply.ok and reply.result is not None, reply.error
    return str(reply.result["template"]["id"])


def listed(client: BusClient, command: msg.ListTemplates | deploy.ListDeploys) -> list[str]:
    reply = client.call(command)
    assert reply.ok and reply.result is not None, reply.error
    key = "id" if isinstance(command, msg.ListTemplates) else "deploy_id"
    return [item[key] for item in reply.result["items"]]


def test_id_prefixes_select_on_postgresql_and_match_literally(
    registration_settings: Callable[..., RegistrationSettings],
    postgres_url: str,
    client: BusClient,
) -> None:
    with running(bootstrap(registration_settings(database_url=postgres_url))):
        one, two = register(client, "one"), register(client, "two")
        by_prefix = listed(client, msg.ListTemplates(id_prefix=one[:8]))
        whole = listed(client, msg.ListTemplates(id_prefix=two))
        wildcards = listed(client, msg.ListTemplates(id_prefix="_" * 6))
        percent = listed(client, msg.ListTemplates(id_prefix="%"))
        no_deploys = listed(client, deploy.ListDeploys(id_prefix=one[:8]))

    assert by_prefix == [one]
    assert whole == [two]
    assert (wildcards, percent, no_deploys) == ([], [], [])
