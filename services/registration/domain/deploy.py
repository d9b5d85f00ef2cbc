"""Deploy policy: which hosts count as Up, which to try next, and which failures end a deploy."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from directdl.contracts.download import DownloadFailure
from directdl.liveness import is_up

MAX_HOSTS = 3


@dataclass(frozen=True)
class Host:
    host_id: str
    zone_id: str
    state: str
    last_seen: datetime
    interval_seconds: float
    free_bytes: int
    template_ids: frozenset[str]
    pool_ids: frozenset[str] = frozenset()

    def is_up(self, now: datetime) -> bool:
        return is_up(self.state, self.last_seen, self.interval_seconds, now)


def candidates(
    hosts: Iterable[Host],
    zone_id: str,
    template_id: str,
    tried: set[str],
    now: datetime,
    pool_id: str | None = None,
) -> list[Host]:
    """Up hosts of the zone not tried yet (with the pool, when one is named): those that hold
    the template first (no download at all), then the ones with the most free space."""
    usable = [
        h
        for h in hosts
        if h.zone_id == zone_id
        and h.is_up(now)
        and h.host_id not in tried
        and (pool_id is None or pool_id in h.pool_ids)
    ]
    return sorted(
        usable, key=lambda h: (template_id not in h.template_ids, -h.free_bytes, h.host_id)
    )


def retry_elsewhere(code: DownloadFailure, attempts_made: int) -> bool:
    """Whether a failed attempt moves the deploy on to another host: only when one may do
    better (see `DownloadFailure.another_host_may_succeed`), and at most MAX_HOSTS in all."""
    return code.another_host_may_succeed and attempts_made < MAX_HOSTS
