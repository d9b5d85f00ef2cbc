"""The hosts repository: this service's view of hosts, upserted from their beats and inventories."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session

from certificate.adapters.orm import HostRow
from certificate.domain.model import Host
from directdl.contracts.host import HostHeartbeat, HostInventory, HostState
from directdl.runtime.upsert import Upsert, excluded

HOSTS = cast(Table, HostRow.__table__)
# A host known from its inventory alone has never been heard beating: it is not Up until it is.
NEVER = datetime(1970, 1, 1, tzinfo=UTC)

# Liveness; a beat older than the one stored changes nothing.
_BEATS = Upsert(
    HOSTS,
    ("host_id",),
    ("zone_id", "state", "interval_seconds", "last_seen"),
    only_if=HOSTS.c.last_seen < excluded(HOSTS).last_seen,
)
# What a host holds, where the digest changed.
_INVENTORIES = Upsert(
    HOSTS,
    ("host_id",),
    ("zone_id", "certificates", "inventory_digest"),
    only_if=HOSTS.c.inventory_digest.is_distinct_from(excluded(HOSTS).inventory_digest),
)


@dataclass(frozen=True)
class Inventoried:
    """The digest of the inventory a host's row holds, and when it was last asked again."""

    digest: str | None
    asked_at: datetime | None


class HostRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def record_beats(self, beats: Sequence[HostHeartbeat]) -> None:
        """Liveness in one statement; a beat older than the one stored changes nothing (the
        later of two in a batch is kept), so a redelivery cannot make a host look silent."""
        rows: list[dict[str, object]] = [
            {
                "host_id": b.host_id,
                "zone_id": b.zone_id,
                "state": b.state.value,
                "interval_seconds": b.interval_seconds,
                "last_seen": b.sent_at,
                "certificates": [],
            }
            for b in beats
        ]
        _BEATS(self.session, rows)

    def record_inventories(self, inventories: Sequence[HostInventory]) -> None:
        """The trust stores the hosts hold, in one statement, written only where the digest
        changed: an inventory sent again as asked, unchanged, writes nothing."""
        rows = [
            {
                "host_id": i.host_id,
                "zone_id": i.zone_id,
                "state": HostState.DOWN.value,
                "interval_seconds": 0.0,
                "last_seen": NEVER,
                "certificates": [c.model_dump(mode="json") for c in i.certificates],
                "inventory_digest": i.digest,
            }
            for i in inventories
        ]
        _INVENTORIES(self.session, rows)

    def inventoried(self, host_ids: Sequence[str]) -> dict[str, Inventoried]:
        query = select(HostRow.host_id, HostRow.inventory_digest, HostRow.inventory_asked_at)
        rows = self.session.execute(query.where(HostRow.host_id.in_(set(host_ids))))
        return {host_id: Inventoried(digest, asked) for host_id, digest, asked in rows}

    def asked_for_inventory(self, host_ids: Sequence[str], now: datetime) -> None:
        if not host_ids:
            return
        asked = update(HOSTS).where(HOSTS.c.host_id.in_(set(host_ids)))
        self.session.execute(asked.values(inventory_asked_at=now))

    def get(self, host_id: str) -> Host | None:
        row = self.session.get(HostRow, host_id)
        return _host(row) if row else None

    def knows_zone(self, zone_id: str) -> bool:
        query = select(HostRow.host_id).where(HostRow.zone_id == zone_id)
        return self.session.scalars(query).first() is not None

    def up_in_zone(self, zone_id: str, now: datetime) -> list[Host]:
        """The zone's hosts Up at `now`: give the heartbeats' clock, not the wall clock, so that
        hosts whose beats wait unread in the queue still count."""
        query = select(HostRow).where(HostRow.zone_id == zone_id).order_by(HostRow.host_id)
        hosts = (_host(r) for r in self.session.scalars(query))
        return [h for h in hosts if h.is_up(now)]


def _host(row: HostRow) -> Host:
    return Host(
        host_id=row.host_id,
        zone_id=row.zone_id,
        state=HostState(row.state),
        last_seen=row.last_seen,
        interval_seconds=row.interval_seconds,
        aliases=frozenset(str(c["alias"]) for c in row.certificates),
    )
