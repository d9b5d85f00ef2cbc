"""Hosts' beats and inventories in bulk, on SQLite and PostgreSQL: stale ones change nothing,
the watchdog's query finds the silent, and migration 0009 keeps what hosts held."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.orm import Session

from directdl.contracts.host import HostState, StoredTemplate
from directdl.runtime.db import make_engine, session_factory
from directdl.runtime.migrate import alembic_config, upgrade
from directdl_testing.clocks import Wall
from directdl_testing.messages import heartbeat, inventory
from registration.adapters.hosts import HostRepository
from registration.bootstrap import MIGRATIONS
from registration.clock import ServiceClock

pytestmark = pytest.mark.integration

DIGEST = "{SHA-256}" + "ab" * 32


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db.sqlite'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def session(url: str) -> Iterator[Session]:
    upgrade(MIGRATIONS, url)
    engine = make_engine(url)
    with session_factory(engine)() as session:
        yield session
    engine.dispose()


def copy(template_id: str) -> StoredTemplate:
    return StoredTemplate(
        template_id=template_id, pool_id="pool-h1", path=f"/p/{template_id}", size=1, digest=DIGEST
    )


def test_many_beats_in_one_upsert_and_a_stale_one_changes_nothing(session: Session) -> None:
    hosts = HostRepository(session, ServiceClock())
    now = datetime.now(UTC)
    # More rows than one statement binds on either database: the upsert chunks them.
    hosts.record_beats([heartbeat(f"h{n:04}", sent_at=now) for n in range(5000)])
    hosts.record_beats([heartbeat("h0001", state=HostState.DOWN, sent_at=now - timedelta(1))])
    session.commit()

    assert session.scalar(text("SELECT count(*) FROM hosts WHERE state = 'Up'")) == 5000
    assert (
        len(hosts.listed(None, HostState.UP)) == 5000 and hosts.listed(None, HostState.DOWN) == []
    )


def test_an_inventory_is_kept_only_when_newer_and_new_or_after_local_changes(
    session: Session,
) -> None:
    hosts = HostRepository(session, ServiceClock())
    first = inventory("h1", templates=[copy("t1")])
    hosts.record_beats([heartbeat("h1", inventory_digest=first.digest)])
    hosts.record_inventories([first])
    hosts.record_inventories([inventory("h1", sent_at=first.sent_at - timedelta(seconds=1))])
    assert hosts.inventory_digests(["h1", "h2"]) == {"h1": first.digest}
    held = hosts.get("h1")
    assert held is not None and [t.template_id for t in held.templates] == ["t1"]

    hosts.save_holdings(held.holding(copy("t2")))
    again = inventory("h1", templates=[copy("t1")], sent_at=first.sent_at + timedelta(seconds=1))
    assert again.digest == first.digest
    hosts.record_inventories([again])  # newer, after a local change: the host knows best
    session.commit()
    after = hosts.get("h1")
    assert after is not None and [t.template_id for t in after.templates] == ["t1"]


def test_the_watchdog_marks_the_silent_once_and_not_while_the_clock_lags(session: Session) -> None:
    wall = Wall()
    clock = ServiceClock(wall)
    hosts = HostRepository(session, clock)
    hosts.record_beats([heartbeat("quiet", sent_at=wall()), heartbeat("loud", sent_at=wall())])
    wall.advance(60)
    clock.observe([wall() - timedelta(seconds=55)])  # a backlog, 55 s behind
    hosts.record_beats([heartbeat("loud", sent_at=wall() - timedelta(seconds=55))])
    assert hosts.mark_silent_down() == []

    hosts.record_beats([heartbeat("loud", sent_at=wall())])
    clock.observe([wall()])  # caught up
    assert [s.host_id for s in hosts.mark_silent_down()] == ["quiet"]
    assert hosts.mark_silent_down() == [], "told once"
    session.commit()
    assert [h.host_id for h in hosts.listed(None, HostState.DOWN)] == ["quiet"]


def test_migration_0009_keeps_what_each_host_held_and_asks_for_its_inventory(url: str) -> None:
    config = alembic_config(MIGRATIONS, url)
    command.upgrade(config, "0008")
    engine = make_engine(url)
    seen = datetime.now(UTC)
    held = [copy("t1").model_dump(mode="json")]
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO hosts (host_id, zone_id, cluster_id, state, interval_seconds, "
                "last_seen, pools, templates) VALUES ('h1', 'zone-1', 'c1', 'Up', 5, :seen, "
                "'[]', :held)"
            ),
            {"seen": seen, "held": json.dumps(held)},
        )
    command.upgrade(config, "head")
    with session_factory(engine)() as session:
        hosts = HostRepository(session, ServiceClock())
        host = hosts.get("h1")
        assert host is not None and host.is_up(seen) and not host.is_up(seen + timedelta(16))
        assert [t.template_id for t in host.templates] == ["t1"]
        assert hosts.inventory_digests(["h1"]) == {"h1": None}, "its next beat asks for it"
    command.downgrade(config, "0008")
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT templates FROM hosts")) is not None
    engine.dispose()
