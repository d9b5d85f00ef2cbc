"""A host as registration knows it from its heartbeats and inventories: liveness and holdings."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from directdl.contracts.host import (
    HostHeartbeat,
    HostInventory,
    HostState,
    HostView,
    PoolStatus,
    StoredTemplate,
)
from directdl.liveness import MISSED_HEARTBEATS, is_up

# A host is asked for its inventory again at most once in this many of its intervals.
ASK_EVERY_INTERVALS = 3


@dataclass(frozen=True)
class Host:
    host_id: str
    zone_id: str
    cluster_id: str
    state: HostState  # what the host last said; `is_up` also asks whether it still says it
    last_seen: datetime
    interval_seconds: float
    pools: tuple[PoolStatus, ...] = ()
    templates: tuple[StoredTemplate, ...] = ()

    # How far the reader's heartbeat clock was behind the wall clock (its lag in the beats):
    # liveness is judged that much earlier, so that a backlog of beats makes no host Down.
    lag: timedelta = timedelta(0)

    @classmethod
    def reported(cls, beat: HostHeartbeat, inventory: HostInventory | None = None) -> Host:
        """The host as its heartbeat, and its inventory if any, describe it."""
        return cls(
            host_id=beat.host_id,
            zone_id=beat.zone_id,
            cluster_id=beat.cluster_id,
            state=beat.state,
            last_seen=beat.sent_at,
            interval_seconds=beat.interval_seconds,
            pools=tuple(inventory.pools) if inventory else (),
            templates=tuple(inventory.templates) if inventory else (),
        )

    def is_up(self, now: datetime) -> bool:
        return is_up(self.state, self.last_seen, self.interval_seconds, now - self.lag)

    def has_pool(self, pool_id: str) -> bool:
        return any(p.pool_id == pool_id for p in self.pools)

    def free_bytes(self, pool_id: str | None = None) -> int:
        """The room a download would have: in the pool named, or else in the roomiest pool.
        Pools are never added up: a file goes into one, and another's space is no use to it."""
        free = [p.free_bytes for p in self.pools if pool_id is None or p.pool_id == pool_id]
        return max(free, default=0)

    def holds(self, template_id: str) -> bool:
        return any(t.template_id == template_id for t in self.templates)

    def holding(self, stored: StoredTemplate) -> Host:
        """This host once a download has put `stored` on it, before its next inventory says so."""
        kept = tuple(t for t in self.templates if t.template_id != stored.template_id)
        return replace(self, templates=(*kept, stored))

    def without(self, pool_id: str, template_ids: Iterable[str]) -> Host:
        """This host once it has removed these templates' copies from `pool_id`, before its
        next inventory says so; their copies on its other pools stay."""
        gone = set(template_ids)
        kept = tuple(
            t for t in self.templates if not (t.pool_id == pool_id and t.template_id in gone)
        )
        return replace(self, templates=kept)

    def copies(self, template_id: str | None = None) -> int:
        """How many copies it last said it holds, of `template_id` or of every template."""
        return sum(1 for t in self.templates if template_id in (None, t.template_id))

    def view(self, now: datetime) -> HostView:
        """As `host.list` shows it: Down once it has been silent too long, whatever it said."""
        return HostView(
            host_id=self.host_id,
            zone_id=self.zone_id,
            cluster_id=self.cluster_id,
            state=HostState.UP if self.is_up(now) else HostState.DOWN,
            last_seen=self.last_seen,
            pools=list(self.pools),
            templates=list(self.templates),
        )


def silent_after(last_seen: datetime, interval_seconds: float) -> datetime:
    """When a host last heard from at `last_seen` stops counting as Up (see `is_up`), in UTC."""
    silence = timedelta(seconds=interval_seconds * MISSED_HEARTBEATS)
    return last_seen.astimezone(UTC) + silence


def needs_inventory(
    beat: HostHeartbeat, held: str | None, asked_at: datetime | None, now: datetime
) -> bool:
    """Whether to ask the host for its inventory: the beat carries a digest other than the
    one held (none when no inventory came yet), and it was not asked lately."""
    if beat.inventory_digest == held:
        return False
    pause = timedelta(seconds=beat.interval_seconds * ASK_EVERY_INTERVALS)
    return asked_at is None or now - asked_at >= pause
