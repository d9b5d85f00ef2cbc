"""An operation in flight at the upgrade to per-host rows still ends when its host answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, text

from certificate.bootstrap import MIGRATIONS
from certificate.domain.operation import HostAnswer
from certificate.uow import CertificateUnitOfWork
from directdl.contracts.certificate import HostCertState
from directdl.runtime.db import session_factory
from directdl.runtime.migrate import alembic_config

pytestmark = pytest.mark.integration

OUTCOMES = [{"host_id": "h1", "state": "UPLOADED", "reason": None}]


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path / 'certificate.db'}"


def test_an_operation_in_flight_keeps_its_hosts_across_the_upgrade_and_back(
    database_url: str,
) -> None:
    config = alembic_config(MIGRATIONS, database_url)
    command.upgrade(config, "0004")
    engine = create_engine(database_url)
    deadline = datetime.now(UTC) + timedelta(minutes=5)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO operations (id, kind, certificate_id, waiting_for, outcomes, "
                "deadline, finished) VALUES ('op-1', 'upload', 'cert-1', :waiting, :outcomes, "
                ":deadline, :finished)"
            ),
            {
                "waiting": json.dumps(["h2", "h3"]),
                "outcomes": json.dumps(OUTCOMES),
                "deadline": deadline,
                "finished": False,
            },
        )

    command.upgrade(config, "head")

    with CertificateUnitOfWork(session_factory(engine)) as uow:
        before = uow.operations.get("op-1")
        assert before is not None
        assert before.waiting_for == ("h2", "h3")
        assert [(o.host_id, o.state) for o in before.outcomes] == [("h1", HostCertState.UPLOADED)]
        answer = HostAnswer("op-1", "cert-1", "h2", HostCertState.FAILED, "no")
        [settled] = uow.operations.record_answers([answer])
        assert settled.outcome.host_id == "h2"
        assert uow.operations.waiting(["op-1"]) == {"op-1"}, "h3 is still to answer"
        uow.commit()

    command.downgrade(config, "0004")
    with engine.connect() as connection:
        waiting, outcomes = connection.execute(
            text("SELECT waiting_for, outcomes FROM operations WHERE id = 'op-1'")
        ).one()
    engine.dispose()
    as_list = [json.loads(v) if isinstance(v, str) else v for v in (waiting, outcomes)]
    assert as_list == [["h3"], [*OUTCOMES, {"host_id": "h2", "state": "FAILED", "reason": "no"}]]
