"""Every service's migrations build exactly its models, on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, create_engine

from certificate.adapters.orm import Base as CertificateBase
from certificate.bootstrap import MIGRATIONS as CERTIFICATE
from directdl.runtime.migrate import upgrade
from host_agent.adapters.orm import Base as AgentBase
from host_agent.bootstrap import MIGRATIONS as AGENT
from registration.adapters.orm import Base as RegistrationBase
from registration.bootstrap import MIGRATIONS as REGISTRATION
from sync_scheduler.adapters.orm import Base as SchedulerBase
from sync_scheduler.bootstrap import MIGRATIONS as SCHEDULER

pytestmark = pytest.mark.integration

SERVICES = {
    "registration": (REGISTRATION, RegistrationBase.metadata),
    "host_agent": (AGENT, AgentBase.metadata),
    "certificate": (CERTIFICATE, CertificateBase.metadata),
    "sync_scheduler": (SCHEDULER, SchedulerBase.metadata),
}


def schema_drift(migrations: Path, metadata: MetaData, url: str) -> list[object]:
    upgrade(migrations, url)
    engine = create_engine(url)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), metadata)
    engine.dispose()
    return list(diff)


@pytest.mark.parametrize("service", SERVICES)
def test_migrations_match_the_models_on_sqlite(service: str, tmp_path: Path) -> None:
    migrations, metadata = SERVICES[service]
    assert schema_drift(migrations, metadata, f"sqlite:///{tmp_path / 'db.sqlite'}") == []


@pytest.mark.parametrize("service", SERVICES)
def test_migrations_match_the_models_on_postgresql(service: str, postgres_url: str) -> None:
    migrations, metadata = SERVICES[service]
    assert schema_drift(migrations, metadata, postgres_url) == []
