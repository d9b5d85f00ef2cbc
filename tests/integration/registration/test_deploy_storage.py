"""Deploys and hosts round-trip their repositories on SQLite and PostgreSQL, states as before."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from directdl.contracts.deploy import AttemptState, DeployTemplate
from directdl.contracts.download import DownloadFailure
from directdl.contracts.host import HostState, StoredTemplate
from directdl.contracts.template import SourceProtocol, TemplateFormat, TemplateType
from directdl.runtime.db import make_engine, session_factory
from directdl.runtime.migrate import upgrade
from directdl_testing.messages import heartbeat, inventory
from registration.adapters.deploys import DeployRepository
from registration.adapters.hosts import HostRepository
from registration.bootstrap import MIGRATIONS
from registration.clock import ServiceClock
from registration.domain.deploy import attempt_failed, start
from registration.domain.host import Host
from registration.domain.template import Template

pytestmark = pytest.mark.integration

DIGEST = "{SHA-256}" + "ab" * 32
TEMPLATE = Template(
    id="t1",
    name="centos",
    url="https://images.example/c.qcow2",
    protocol=SourceProtocol.HTTPS,
    zone_ids=("zone-1",),
    hypervisor="KVM",
    format=TemplateFormat.QCOW2,
    checksum=DIGEST,
    template_type=TemplateType.USER,
)


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


def test_a_host_comes_back_as_its_beat_and_inventory_said_with_its_state_stored_as_before(
    session: Session,
) -> None:
    stored = StoredTemplate(template_id="t1", pool_id="pool-h1", path="/p", size=1, digest=DIGEST)
    beat, listed = heartbeat("h1", state=HostState.DOWN), inventory("h1", templates=[stored])
    hosts = HostRepository(session, ServiceClock())
    hosts.record_inventories([listed])
    hosts.record_beats([beat])
    session.commit()

    host = Host.reported(beat, listed)
    loaded = hosts.get("h1")
    assert loaded is not None and replace(loaded, lag=timedelta(0)) == host
    assert [h.host_id for h in hosts.in_zone("zone-1")] == ["h1"] and hosts.in_zone("zone-2") == []
    assert session.scalar(text("SELECT state FROM hosts")) == "Down"


def test_a_deploy_with_a_failed_and_a_running_attempt_comes_back_as_it_was_saved(
    session: Session,
) -> None:
    now = datetime.now(UTC)
    hosts = [Host.reported(heartbeat(h, sent_at=now), inventory(h)) for h in ("h1", "h2")]
    cmd = DeployTemplate(template_id="t1", zone_id="zone-1")
    first = start(cmd, TEMPLATE, hosts, now, reply_to="reply-queue", correlation_id="c1")
    deploys = DeployRepository(session)
    deploys.save(first.deploy)
    assert first.started is not None
    later = now + timedelta(seconds=1)
    moved = attempt_failed(
        first.deploy, first.started.job_id, DownloadFailure.TLS, "untrusted", hosts, later
    )
    deploys.save(moved.deploy)
    session.commit()

    assert deploys.get(moved.deploy.deploy_id) == moved.deploy
    assert moved.started is not None
    assert deploys.for_attempt(first.started.job_id) == moved.deploy
    assert deploys.running() == [moved.deploy]
    rows = session.execute(
        text("SELECT state, error_code FROM deploy_attempts ORDER BY started_at")
    ).all()
    assert [tuple(r) for r in rows] == [("FAILED", "TLS"), ("RUNNING", None)]


def test_an_ended_deploy_keeps_its_outcome_and_is_no_longer_running(session: Session) -> None:
    now = datetime.now(UTC)
    hosts = [Host.reported(heartbeat("h1", sent_at=now), inventory("h1"))]
    cmd = DeployTemplate(template_id="t1", zone_id="zone-1")
    step = start(cmd, TEMPLATE, hosts, now, reply_to=None, correlation_id=None)
    assert step.started is not None
    ended = attempt_failed(
        step.deploy, step.started.job_id, DownloadFailure.NOT_FOUND, "404", hosts, now
    )
    deploys = DeployRepository(session)
    deploys.save(ended.deploy)
    session.commit()

    loaded = deploys.get(ended.deploy.deploy_id)
    assert loaded is not None and loaded == ended.deploy
    assert loaded.state is AttemptState.FAILED and loaded.outcome == ended.ended
    assert deploys.running() == []
    assert session.scalar(text("SELECT state FROM deploys")) == "FAILED"
