"""The registration database: migrations match the models, and PostgreSQL works as SQLite does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from directdl.bus.client import BusClient
from directdl.contracts import template as msg
from directdl.runtime.migrate import upgrade
from directdl.testing.services import running
from registration.adapters.orm import Base
from registration.bootstrap import MIGRATIONS, bootstrap
from registration.config import RegistrationSettings

pytestmark = pytest.mark.integration


def schema_drift(url: str) -> list[object]:
    upgrade(MIGRATIONS, url)
    engine = create_engine(url)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    return list(diff)


def test_migrations_build_exactly_the_models_on_sqlite(tmp_path: Path) -> None:
    assert schema_drift(f"sqlite:///{tmp_path / 'r.db'}") == []


def test_migrations_build_exactly_the_models_on_postgresql(postgres_url: str) -> None:
    assert schema_drift(postgres_url) == []


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
