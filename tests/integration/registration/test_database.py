"""The registration service on PostgreSQL works as it does on SQLite."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from directdl.bus.client import BusClient
from directdl.contracts import template as msg
from directdl_testing.services import running
from registration.bootstrap import bootstrap
from registration.config import RegistrationSettings

pytestmark = pytest.mark.integration


def test_the_service_runs_on_postgresql(
    registration_settings: Callable[..., RegistrationSettings],
    data_dir: Path,
    postgres_url: str,
    client: BusClient,
) -> None:
    settings = registration_settings(database_url=postgres_url)
    command = msg.RegisterTemplate(
        name="pg",
        url="nfs://filer/export/pg.qcow2",
        zone_id=["z1", "z2"],
        hypervisor="KVM",
        format="QCOW2",
    )
    with running(bootstrap(settings)):
        registered = client.call(command, message_id="pg-1")
        again = client.call(command, message_id="pg-1")
        clash = client.call(command)
        listed = client.call(msg.ListTemplates(zone_id="z2"))

    assert registered.ok and registered == again
    assert clash.error is not None and clash.error.code == "CONFLICT"
    assert listed.result is not None and listed.result["total"] == 1
    assert not list((data_dir).glob("*.db")), "no SQLite file when a database URL is given"
