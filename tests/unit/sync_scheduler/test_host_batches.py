"""The hosts queue a batch at a time: one upsert for many hosts, stale beats ignored, one
run for the hosts come Up, and an inventory asked for when a beat's digest is unknown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from directdl.bus.memory import InMemoryBus
from directdl.contracts.host import TrustedCertificate
from directdl.contracts.sync import DisableZone
from directdl.liveness import HeartbeatClock
from directdl.runtime.db import session_factory
from directdl.runtime.live_settings import LiveSettings
from directdl_testing.memory import memory_engine
from directdl_testing.messages import heartbeat, host_says, inventory
from sync_scheduler.adapters.orm import Base, HostInventoryRow, HostRow, settings, store
from sync_scheduler.handlers import HANDLERS
from sync_scheduler.uow import SchedulerUnitOfWork

from .test_handlers import FP_A, provisions, runs, uploaded, view

pytestmark = pytest.mark.unit

REQUESTS = "host.*.inventory.request"


class Statements:
    """Counts the SQL statements the database is sent."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, *_args: Any) -> None:
        self.count += 1


@pytest.fixture
def statements() -> Statements:
    return Statements()


@pytest.fixture
def sessions(statements: Statements) -> sessionmaker[Session]:
    engine = memory_engine(Base.metadata)
    event.listen(engine, "before_cursor_execute", statements)
    return session_factory(engine)


@pytest.fixture
def bus(sessions: sessionmaker[Session]) -> InMemoryBus:
    return InMemoryBus.serving(
        HANDLERS,
        {
            "live": LiveSettings("sync-scheduler", settings),
            "interval": lambda: 3600.0,
            "tick_interval": lambda: 3600.0,
            "heartbeat_clock": HeartbeatClock(),
        },
        lambda: SchedulerUnitOfWork(sessions),
        store,
        sessions,
        {"owner": "sync-scheduler"},
    )


def ago(seconds: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)


def hosts_say(*host_ids: str, **fields: Any) -> list[Any]:
    """Each host's inventory, then each one's heartbeat: as a batch holds them when many
    hosts start at once, and so handed over in two calls rather than two per host."""
    said = [host_says(host_id, **fields) for host_id in host_ids]
    return [listed for listed, _beat in said] + [beat for _listed, beat in said]


def stored(sessions: sessionmaker[Session], host_id: str) -> HostRow:
    with sessions() as session:
        row = session.get(HostRow, host_id)
        assert row is not None
        return row


def test_many_hosts_in_one_batch_cost_the_statements_of_a_few(
    bus: InMemoryBus, statements: Statements
) -> None:
    def cost(messages: list[Any]) -> int:
        before = statements.count
        bus.submit_many(messages)
        return statements.count - before

    few, many = ["a", "b", "c"], [f"h{n}" for n in range(300)]
    appearing = {len(hosts): cost(hosts_say(*hosts, sent_at=ago(10))) for hosts in (few, many)}
    beating = {
        len(hosts): cost([heartbeat(h, sent_at=ago(5)) for h in hosts]) for hosts in (few, many)
    }

    assert appearing[300] == appearing[3] <= 20, "one run for the hosts come Up, no query each"
    assert beating[300] == beating[3] <= 10
    assert [r["hosts_checked"] for r in runs(bus)] == [3, 300]
    assert bus.published(REQUESTS) == []


def test_a_stale_beat_after_a_newer_one_changes_nothing(
    bus: InMemoryBus, sessions: sessionmaker[Session]
) -> None:
    newer = ago(1)
    bus.submit_many(host_says("h1", sent_at=newer, interval_seconds=5))

    bus.submit_many([heartbeat("h1", sent_at=ago(30), state="Down", interval_seconds=60)])
    bus.submit_many([heartbeat("h1", sent_at=ago(3), state="Down"), heartbeat("h2")])

    row = stored(sessions, "h1")
    assert (row.state, row.last_seen, row.interval_seconds) == ("Up", newer, 5)
    assert stored(sessions, "h2").state == "Up"


def test_the_hosts_newly_up_in_a_batch_get_one_run(bus: InMemoryBus) -> None:
    uploaded(bus, view("a", "alpha", FP_A))
    bus.submit_many(hosts_say("up", "down", sent_at=ago(4)))
    bus.submit_many([heartbeat("down", state="Down", sent_at=ago(3))])
    assert bus.call(DisableZone(zone_id="off")).ok
    before = len(provisions(bus))

    bus.submit_many(
        [
            inventory("new"),
            inventory("elsewhere", zone_id="off"),
            heartbeat("up"),
            heartbeat("new"),
            heartbeat("down"),
            heartbeat("elsewhere", zone_id="off"),
        ]
    )

    assert len(runs(bus)) == 2
    assert runs(bus)[-1]["hosts_checked"] == 2, "the new host and the one back from Down"
    assert runs(bus)[-1]["zones"] == ["zone-1"], "not the host new in a disabled zone"
    assert sorted(host for _id, host in provisions(bus)[before:]) == ["down", "new"]


def test_a_backlog_of_beats_makes_no_host_come_up_again(bus: InMemoryBus) -> None:
    # Heartbeats handled a minute after they were sent, beat after beat: judged at the
    # heartbeat clock, the hosts were never silent, so nothing runs again.
    bus.submit_many(hosts_say("h1", "h2", sent_at=ago(65)))
    assert len(runs(bus)) == 1
    for sent in (60, 55, 50):
        bus.submit_many([heartbeat("h1", sent_at=ago(sent)), heartbeat("h2", sent_at=ago(sent))])

    assert len(runs(bus)) == 1


def test_an_unknown_digest_asks_the_host_once_in_three_intervals(bus: InMemoryBus) -> None:
    start = ago(60)

    for later in (0, 5, 10, 14):
        bus.submit_many([heartbeat("h1", sent_at=start + timedelta(seconds=later))])
    [asked] = bus.published(REQUESTS)
    bus.submit_many([heartbeat("h1", sent_at=start + timedelta(seconds=16))])

    first, _again = bus.published(REQUESTS)
    assert first == asked
    assert first["digest_seen"] == inventory("h1").digest
    assert [k for k, _b in bus.events if k.endswith(".inventory.request")] == [
        "host.h1.inventory.request"
    ] * 2


def test_a_host_heard_before_its_inventory_is_synced_when_it_arrives(bus: InMemoryBus) -> None:
    uploaded(bus, view("a", "alpha", FP_A))
    bus.submit_many([heartbeat("h1")])
    assert runs(bus)[0]["hosts_checked"] == 0, "its trust store is not known yet"
    assert len(bus.published(REQUESTS)) == 1

    bus.submit_many([inventory("h1")])
    bus.submit_many([heartbeat("h1")])

    assert provisions(bus) == [("a", "h1")]
    assert [r["hosts_checked"] for r in runs(bus)] == [0, 1]
    assert len(bus.published(REQUESTS)) == 1, "the digest is known now"


def test_an_inventory_is_rewritten_only_when_newer_and_changed(
    bus: InMemoryBus, sessions: sessionmaker[Session]
) -> None:
    trusted = [TrustedCertificate(alias="alpha", fingerprint_sha256=FP_A)]
    bus.submit_many([inventory("h1", certificates=trusted, sent_at=ago(5))])
    bus.submit_many([inventory("h1", sent_at=ago(10))])  # older: an empty store, stale

    with sessions() as session:
        row = session.scalars(select(HostInventoryRow)).one()
    assert row.trusted == [["alpha", FP_A]]
    assert row.digest == inventory("h1", certificates=trusted).digest
