"""The hosts repository: liveness from heartbeats in bulk, holdings from inventories."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from pydantic import TypeAdapter
from sqlalchemy import ColumnElement, Select, Table, and_, not_, or_, select, update
from sqlalchemy.orm import Session

from directdl.contracts.host import (
    HostHeartbeat,
    HostInventory,
    HostState,
    PoolStatus,
    StoredTemplate,
)
from directdl.liveness import HeartbeatClock
from directdl.runtime.upsert import Upsert, excluded, upsert
from registration.adapters.orm import HostInventoryRow, HostRow
from registration.domain.host import Host, silent_after

HOSTS = cast(Table, HostRow.__table__)
INVENTORIES = cast(Table, HostInventoryRow.__table__)
# What a beat sets; a beat older than the one stored changes nothing.
RECORD_BEAT = Upsert(
    HOSTS,
    ["host_id"],
    [
        "zone_id",
        "cluster_id",
        "state",
        "interval_seconds",
        "last_seen",
        "silent_after",
        "reported_digest",
    ],
    only_if=HOSTS.c.last_seen < excluded(HOSTS).last_seen,
)


@dataclass(frozen=True)
class Known:
    """What the last heartbeat of a host left, as a batch of beats needs it."""

    state: HostState
    last_seen: datetime
    interval_seconds: float
    inventory_asked_at: datetime | None


@dataclass(frozen=True, order=True)
class Silent:
    """A host the watchdog has just marked Down."""

    host_id: str
    zone_id: str
    last_seen: datetime


class HostRepository:
    def __init__(self, session: Session, clock: HeartbeatClock) -> None:
        self.session = session
        self.clock = clock

    # Reads: rows as plain tuples, never ORM objects a bulk statement would leave stale.

    def get(self, host_id: str) -> Host | None:
        return self.by_ids([host_id]).get(host_id)

    def by_ids(self, host_ids: Collection[str]) -> dict[str, Host]:
        query = _hosts().where(HOSTS.c.host_id.in_(sorted(host_ids)))
        return {host.host_id: host for host in self._read(query)}

    def in_zone(self, zone_id: str | None = None) -> list[Host]:
        """The hosts of `zone_id`, or every host, by id."""
        query = _hosts()
        if zone_id is not None:
            query = query.where(HOSTS.c.zone_id == zone_id)
        return self._read(query.order_by(HOSTS.c.host_id))

    def listed(self, zone_id: str | None, state: HostState | None) -> list[Host]:
        """`host.list`'s hosts: Up or Down is judged in SQL at the heartbeat clock, so a list
        of the Down hosts loads only those."""
        query = _hosts()
        if zone_id is not None:
            query = query.where(HOSTS.c.zone_id == zone_id)
        if state is not None:
            up = up_at(self.clock.now())
            query = query.where(up if state is HostState.UP else not_(up))
        return self._read(query.order_by(HOSTS.c.host_id))

    def _read(self, query: Select[Any]) -> list[Host]:
        # How far the heartbeat clock is behind the wall clock the handlers' `now` comes from.
        lag = datetime.now(UTC) - self.clock.now()
        return [_to_host(row, lag) for row in self.session.execute(query)]

    # Heartbeats, a batch at a time.

    def known(self, host_ids: Collection[str]) -> dict[str, Known]:
        """The liveness stored for these hosts, in one query."""
        columns = (HOSTS.c.state, HOSTS.c.last_seen, HOSTS.c.interval_seconds)
        query = select(HOSTS.c.host_id, *columns, HOSTS.c.inventory_asked_at).where(
            HOSTS.c.host_id.in_(sorted(host_ids))
        )
        return {row[0]: Known(*row[1:]) for row in self.session.execute(query)}

    def inventory_digests(self, host_ids: Collection[str]) -> dict[str, str | None]:
        """The digest of each host's last inventory; a host with none is missing."""
        query = select(INVENTORIES.c.host_id, INVENTORIES.c.digest).where(
            INVENTORIES.c.host_id.in_(sorted(host_ids))
        )
        return {host_id: digest for host_id, digest in self.session.execute(query)}

    def record_beats(self, beats: Sequence[HostHeartbeat]) -> None:
        """One statement for the batch, run for each row; a beat older than the one stored
        changes nothing."""
        RECORD_BEAT(self.session, [_beat_row(beat) for beat in beats])

    def asked_for_inventory(self, host_ids: Collection[str], at: datetime) -> None:
        statement = (
            update(HOSTS).where(HOSTS.c.host_id.in_(sorted(host_ids))).values(inventory_asked_at=at)
        )
        self.session.execute(statement)

    def mark_silent_down(self) -> list[Silent]:
        """Mark Down, in one statement, the hosts that said Up and have been silent too long
        at the heartbeat clock; each is returned once, by the call that marked it."""
        statement = (
            update(HOSTS)
            .where(HOSTS.c.state == HostState.UP, HOSTS.c.silent_after < self.clock.now())
            .values(state=HostState.DOWN)
            .returning(HOSTS.c.host_id, HOSTS.c.zone_id, HOSTS.c.last_seen)
        )
        return sorted(Silent(*row) for row in self.session.execute(statement))

    # What hosts hold.

    def record_inventories(self, inventories: Sequence[HostInventory]) -> None:
        """Keep each inventory newer than the one stored whose digest differs from it, or
        that follows local changes (`save_holdings`)."""
        rows = [_inventory_row(inventory) for inventory in inventories]
        new = excluded(INVENTORIES)
        only_if = and_(
            or_(INVENTORIES.c.sent_at.is_(None), INVENTORIES.c.sent_at < new.sent_at),
            or_(INVENTORIES.c.digest.is_distinct_from(new.digest), INVENTORIES.c.edited),
        )
        update_ = ["pools", "templates", "digest", "sent_at", "edited"]
        upsert(self.session, INVENTORIES, rows, key=["host_id"], update=update_, only_if=only_if)

    def save_holdings(self, host: Host) -> None:
        """Record what a download or a removal changed on `host` before its inventory says so.
        The digest stays the host's: its next inventory, sent because its holdings changed,
        replaces these, and until then a beat carrying the old digest asks for nothing."""
        row = {
            "host_id": host.host_id,
            "pools": _dump(host.pools),
            "templates": _dump(host.templates),
            "digest": None,
            "sent_at": None,
            "edited": True,
        }
        upsert(self.session, INVENTORIES, [row], key=["host_id"], update=["templates", "edited"])


def up_at(now: datetime) -> ColumnElement[bool]:
    """`directdl.liveness.is_up` in SQL, through the stored `silent_after`."""
    return and_(HOSTS.c.state == HostState.UP, HOSTS.c.silent_after >= now)


def _hosts() -> Select[Any]:
    inventory = (INVENTORIES.c.pools, INVENTORIES.c.templates)
    joined = HOSTS.outerjoin(INVENTORIES, INVENTORIES.c.host_id == HOSTS.c.host_id)
    return select(*_HOST_COLUMNS, *inventory).select_from(joined)


_HOST_COLUMNS = (
    HOSTS.c.host_id,
    HOSTS.c.zone_id,
    HOSTS.c.cluster_id,
    HOSTS.c.state,
    HOSTS.c.last_seen,
    HOSTS.c.interval_seconds,
)
# A host may hold thousands of templates, read at every step of every deploy in its zone: one
# adapter for the whole list validates them in a single call, faster than one model at a time.
_POOLS = TypeAdapter(tuple[PoolStatus, ...])
_TEMPLATES = TypeAdapter(tuple[StoredTemplate, ...])


def _to_host(row: Any, lag: timedelta) -> Host:
    host_id, zone_id, cluster_id, state, last_seen, interval, pools, templates = row
    return Host(
        host_id=host_id,
        zone_id=zone_id,
        cluster_id=cluster_id,
        state=state,
        last_seen=last_seen,
        interval_seconds=interval,
        pools=_POOLS.validate_python(pools or []),
        templates=_TEMPLATES.validate_python(templates or []),
        lag=lag,
    )


def _beat_row(beat: HostHeartbeat) -> dict[str, Any]:
    # In UTC: SQLite keeps a timestamp as text without its zone, compared as text.
    seen = beat.sent_at.astimezone(UTC)
    return {
        "host_id": beat.host_id,
        "zone_id": beat.zone_id,
        "cluster_id": beat.cluster_id,
        "state": beat.state,
        "interval_seconds": beat.interval_seconds,
        "last_seen": seen,
        "silent_after": silent_after(seen, beat.interval_seconds),
        "reported_digest": beat.inventory_digest,
    }


def _inventory_row(inventory: HostInventory) -> dict[str, Any]:
    return {
        "host_id": inventory.host_id,
        "pools": _dump(inventory.pools),
        "templates": _dump(inventory.templates),
        "digest": inventory.digest,
        "sent_at": inventory.sent_at.astimezone(UTC),
        "edited": False,
    }


def _dump(models: Iterable[PoolStatus | StoredTemplate]) -> list[dict[str, Any]]:
    return [m.model_dump(mode="json") for m in models]
