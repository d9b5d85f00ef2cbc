"""A host as registration knows it from its heartbeats: its liveness, pools and templates."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from directdl.contracts.host import HostHeartbeat, HostState, HostView, PoolStatus, StoredTemplate
from directdl.liveness import is_up


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

    @classmethod
    def from_heartbeat(cls, beat: HostHeartbeat) -> Host:
        return cls(
            host_id=beat.host_id,
            zone_id=beat.zone_id,
            cluster_id=beat.cluster_id,
            state=beat.state,
            last_seen=beat.sent_at,
            interval_seconds=beat.interval_seconds,
            pools=tuple(beat.pools),
            templates=tuple(beat.templates),
        )

    def is_up(self, now: datetime) -> bool:
        return is_up(self.state, self.last_seen, self.interval_seconds, now)

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
        """This host once a download has put `stored` on it, before its next heartbeat says so."""
        kept = tuple(t for t in self.templates if t.template_id != stored.template_id)
        return replace(self, templates=(*kept, stored))

    def without(self, pool_id: str, template_ids: Iterable[str]) -> Host:
        """This host once it has removed these templates' copies from `pool_id`, before its
        next heartbeat says so; their copies on its other pools stay."""
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
