"""Prepares round-trip their repository on SQLite and PostgreSQL; a deploy finds its prepare."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from directdl.contracts.prepare import PrepareState, PrepareTemplate
from directdl.runtime.db import make_engine, session_factory
from directdl.runtime.migrate import upgrade
from directdl_testing.messages import heartbeat, inventory
from registration.adapters.prepares import PrepareRepository
from registration.bootstrap import MIGRATIONS
from registration.domain.host import Host
from registration.domain.prepare import host_changed, new_prepare
from tests.integration.registration.test_deploy_storage import TEMPLATE

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgresql"])
def session(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Session]:
    url = (
        f"sqlite:///{tmp_path / 'db.sqlite'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    upgrade(MIGRATIONS, url)
    engine = make_engine(url)
    with session_factory(engine)() as session:
        yield session
    engine.dispose()


def test_a_prepare_comes_back_as_saved_and_is_found_by_its_hosts_deploy(
    session: Session,
) -> None:
    now = datetime.now(UTC)
    hosts = [Host.reported(heartbeat(h, sent_at=now), inventory(h)) for h in ("h2", "h1", "h3")]
    cmd = PrepareTemplate(template_id="t1", zone_id="zone-1", pool_id="pool-x")
    prepare = new_prepare(cmd, TEMPLATE, hosts, 2, now, reply_to="q", correlation_id="c1")
    prepares = PrepareRepository(session)
    prepares.save(prepare)
    session.commit()
    assert prepares.get(prepare.prepare_id) == prepare

    later = now + timedelta(seconds=1)
    prepare, _ = host_changed(prepare, "h1", PrepareState.RUNNING, later, deploy_id="d1")
    prepare, _ = host_changed(prepare, "h2", PrepareState.FAILED, later, code="TLS", message="x")
    prepares.save(prepare)
    session.commit()

    found = prepares.for_deploy("d1")
    assert found == prepare
    assert [h.host_id for h in found.hosts] == ["h1", "h2", "h3"], "in the order queued"
    assert prepares.for_deploy("another") is None
    session.commit()
    states = session.execute(text("SELECT host_id, state FROM prepare_hosts ORDER BY host_id"))
    assert list(states) == [("h1", "RUNNING"), ("h2", "FAILED"), ("h3", "QUEUED")]
