"""Bulk upserts: new rows inserted, newer ones applied, stale and repeated ones skipped."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, select
from sqlalchemy.orm import Session

from directdl.runtime.upsert import excluded, last_per_key, upsert

pytestmark = pytest.mark.unit

metadata = MetaData()
hosts = Table(
    "hosts",
    metadata,
    Column("host_id", String, primary_key=True),
    Column("seen", Integer, nullable=False),
    Column("zone", String, nullable=False),
)


@pytest.fixture
def session() -> Session:
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    return Session(engine)


def rows(session: Session) -> list[tuple[str, int, str]]:
    return [tuple(r) for r in session.execute(select(hosts).order_by(hosts.c.host_id))]


def test_rows_are_inserted_and_only_newer_ones_overwrite(session: Session) -> None:
    upsert(session, hosts, [{"host_id": "a", "seen": 5, "zone": "z1"}], ["host_id"], ["seen"])
    newer = hosts.c.seen < excluded(hosts).seen
    upsert(
        session,
        hosts,
        [
            {"host_id": "a", "seen": 4, "zone": "z2"},  # stale: skipped
            {"host_id": "b", "seen": 1, "zone": "z1"},
        ],
        ["host_id"],
        ["seen", "zone"],
        only_if=newer,
    )
    assert rows(session) == [("a", 5, "z1"), ("b", 1, "z1")]
    upsert(
        session, hosts, [{"host_id": "a", "seen": 6, "zone": "z2"}], ["host_id"], ["seen", "zone"]
    )
    assert rows(session) == [("a", 6, "z2"), ("b", 1, "z1")]


def test_a_batch_holding_one_key_twice_keeps_the_last(session: Session) -> None:
    batch = [
        {"host_id": "a", "seen": 1, "zone": "z1"},
        {"host_id": "b", "seen": 1, "zone": "z1"},
        {"host_id": "a", "seen": 2, "zone": "z1"},
    ]
    assert [r["seen"] for r in last_per_key(batch, ["host_id"])] == [1, 2]
    upsert(session, hosts, batch, ["host_id"], ["seen"])
    assert rows(session) == [("a", 2, "z1"), ("b", 1, "z1")]


def test_with_nothing_to_update_existing_rows_are_left_alone(session: Session) -> None:
    upsert(session, hosts, [{"host_id": "a", "seen": 1, "zone": "z1"}], ["host_id"], [])
    upsert(session, hosts, [{"host_id": "a", "seen": 9, "zone": "z9"}], ["host_id"], [])
    upsert(session, hosts, [], ["host_id"], ["seen"])
    assert rows(session) == [("a", 1, "z1")]
