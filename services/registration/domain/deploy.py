"""Deploy policy: which hosts count as Up, which to try next, and which failures end a deploy."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from directdl.liveness import is_up

MAX_HOSTS = 3
# Failures that lie in the source itself: another host would download the same bad bytes.
# A TLS failure or a full pool is the host's own, so those are tried elsewhere. Every host
# has the same destination policy, so a refused destination is refused everywhere.
# DIGEST_MISMATCH (a completion whose copy registration does not believe) is not here: the
# host had the checksum and claims it matched, so the fault is that host's.
SOURCE_FAILURES = frozenset(
    {
        "CHECKSUM_MISMATCH",
        "UNSAFE_IMAGE",
        "NOT_FOUND",
        "BAD_METALINK",
        "DECOMPRESSION",
        "DESTINATION_DENIED",
    }
)


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


def retry_elsewhere(code: str, attempts_made: int) -> bool:
    return code not in SOURCE_FAILURES and attempts_made < MAX_HOSTS
