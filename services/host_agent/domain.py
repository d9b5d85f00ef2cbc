"""The agent's domain: job states, a stored template file, and which copies the cache lets go."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

from directdl.contracts.pool import CachePolicy, RemovalReason


class JobState(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    # Found unfinished at start: waits for its deploy's owner to say resume or cancel.
    HELD = "HELD"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def ended(self) -> bool:
        return self in ENDED


ENDED = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})
UNFINISHED = frozenset(JobState) - ENDED


@dataclass(frozen=True)
class StoredFile:
    template_id: str
    pool_id: str
    path: str
    size: int
    digest: str  # {SHA-256}hex of the downloaded bytes
    verified_digest: str  # {ALGO}hex that matched the template's checksum
    image_digest: str | None = None  # {SHA-256}hex of the file, when not `digest` (decompressed)
    last_used_at: datetime | None = None  # stored, or last answered a deploy from the pool

    def is_intact(self) -> bool:
        """The file is there with the size it was stored with. Re-hashing several GB on every
        deploy would cost more than the download it saves; a size check catches truncation."""
        path = Path(self.path)
        return path.is_file() and path.stat().st_size == self.size

    def satisfies(self, checksum: str | None) -> bool:
        """Stored bytes are the ones a deploy with this checksum wants."""
        if checksum is None:
            return True
        return checksum.lower() in (self.digest.lower(), self.verified_digest.lower())


@dataclass(frozen=True)
class Eviction:
    copy: StoredFile
    reason: RemovalReason


def evictions(
    copies: Iterable[StoredFile], in_use: Collection[str], policy: CachePolicy, now: datetime
) -> list[Eviction]:
    """What the pool lets go under `policy`, as Ironic's image cache does: first every copy
    unused for longer than max_age_s, then the least recently used until the rest fit in
    max_bytes. A copy whose template is `in_use` (a job, a deploy) is never chosen, even when
    the pool then stays over its cap."""
    chosen: list[Eviction] = []
    kept: list[StoredFile] = []
    oldest = now - timedelta(seconds=policy.max_age_s)
    for copy in sorted(copies, key=_last_used):
        if policy.max_age_s and copy.template_id not in in_use and _last_used(copy) < oldest:
            chosen.append(Eviction(copy, RemovalReason.AGE))
        else:
            kept.append(copy)
    if policy.max_bytes:
        total = sum(copy.size for copy in kept)
        for copy in kept:  # least recently used first
            if total <= policy.max_bytes:
                break
            if copy.template_id not in in_use:
                chosen.append(Eviction(copy, RemovalReason.CAP))
                total -= copy.size
    return chosen


def _last_used(copy: StoredFile) -> datetime:
    return copy.last_used_at or NEVER


NEVER = datetime(1970, 1, 1, tzinfo=UTC)
