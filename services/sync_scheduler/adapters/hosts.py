"""The hosts as their heartbeats and inventories say, written and read a batch at a time."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from sqlalchemy import and_, select, update
from sqlalchemy.orm import Session

from directdl.contracts.host import HostHeartbeat, HostInventory
from directdl.liveness import is_up
from directdl.runtime.upsert import excluded, upsert
from sync_scheduler.adapters.orm import Base, HostInventoryRow, HostRow, ZoneRow
from sync_scheduler.domain.plan import Host, digest

HOSTS = Base.metadata.tables[HostRow.__tablename__]
INVENTORIES = Base.metadata.tables[HostInventoryRow.__tablename__]
ZONES = Base.metadata.tables[ZoneRow.__tablename__]


@dataclass(frozen=True)
class Known:
    """What this service held of a host before a batch of its heartbeats."""

    state: str
    last_seen: datetime
    interval_seconds: float
    inventory_requested_at: datetime | None

    def is_up(self, now: datetime) -> bool:
        return is_up(self.state, self.last_seen, self.interval_seconds, now)


class Hosts:
    def __init__(self, session: Session) -> None:
        self.session = session

    def known(self, host_ids: Collection[str]) -> dict[str, Known]:
        """The stored beat of each of these hosts that has one, in one query."""
        rows = self.session.execute(
            select(
                HostRow.host_id,
                HostRow.state,
                HostRow.last_seen,
                HostRow.interval_seconds,
                HostRow.inventory_requested_at,
            ).where(HostRow.host_id.in_(host_ids))
        )
        return {row.host_id: Known(*row[1:]) for row in rows}

    def inventory_digests(self, host_ids: Collection[str]) -> dict[str, str]:
        rows = self.session.execute(
            select(HostInventoryRow.host_id, HostInventoryRow.digest).where(
                HostInventoryRow.host_id.in_(host_ids)
            )
        )
        return {host_id: stored for host_id, stored in rows}

    def record_beats(self, beats: Sequence[HostHeartbeat]) -> None:
        """One upsert for the hosts, one for the zones first seen (enabled, as a zone is
        until an operator disables it). A beat older than the stored one changes nothing."""
        zones = [{"zone_id": zone, "enabled": True} for zone in sorted({b.zone_id for b in beats})]
        upsert(self.session, ZONES, zones, key=["zone_id"], update=[])
        rows = [
            {
                "host_id": b.host_id,
                "zone_id": b.zone_id,
                "state": b.state.value,
                "interval_seconds": b.interval_seconds,
                "last_seen": b.sent_at,
            }
            for b in beats
        ]
        upsert(
            self.session,
            HOSTS,
            rows,
            key=["host_id"],
            update=["zone_id", "state", "interval_seconds", "last_seen"],
            only_if=HOSTS.c.last_seen < excluded(HOSTS).last_seen,
        )

    def record_inventories(self, inventories: Sequence[HostInventory]) -> None:
        """One upsert, skipping the hosts whose digest is unchanged and stale inventories."""
        rows = [
            {
                "host_id": i.host_id,
                "digest": i.digest,
                "sent_at": i.sent_at,
                "trusted": [[c.alias, c.fingerprint_sha256] for c in i.certificates],
                "trusted_digest": digest((c.alias, c.fingerprint_sha256) for c in i.certificates),
            }
            for i in inventories
        ]
        new = excluded(INVENTORIES)
        upsert(
            self.session,
            INVENTORIES,
            rows,
            key=["host_id"],
            update=["digest", "sent_at", "trusted", "trusted_digest"],
            only_if=and_(INVENTORIES.c.digest != new.digest, INVENTORIES.c.sent_at < new.sent_at),
        )

    def inventory_requested(self, host_ids: Collection[str], at: datetime) -> None:
        self.session.execute(
            update(HostRow).where(HostRow.host_id.in_(host_ids)).values(inventory_requested_at=at)
        )

    def up_hosts(self, now: datetime, host_ids: Collection[str] | None = None) -> list[Host]:
        """The hosts Up at `now` whose inventory is in: one whose trust store is unknown yet
        cannot be planned for, and is once its inventory arrives. Not `trusted`: a host's
        entries are read only if its digest differs from its zone's."""
        query = select(
            HostRow.host_id,
            HostRow.zone_id,
            HostRow.state,
            HostRow.last_seen,
            HostRow.interval_seconds,
            HostInventoryRow.trusted_digest,
        ).join(HostInventoryRow, HostInventoryRow.host_id == HostRow.host_id)
        if host_ids is not None:
            query = query.where(HostRow.host_id.in_(host_ids))
        return [
            Host(row.host_id, row.zone_id, row.trusted_digest, partial(self.trusted, row.host_id))
            for row in self.session.execute(query)
            if is_up(row.state, row.last_seen, row.interval_seconds, now)
        ]

    def trusted(self, host_id: str) -> list[list[str]]:
        return (
            self.session.scalar(
                select(HostInventoryRow.trusted).where(HostInventoryRow.host_id == host_id)
            )
            or []
        )
