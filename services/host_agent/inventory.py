"""What the host holds (pools, templates, trust store), its digest, and when it was last sent."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog

from directdl.contracts import host as msg
from host_agent.truststore import TrustStore, TrustStoreError
from host_agent.uow import AgentUnitOfWork

log = structlog.get_logger(__name__)

# Free space changes with every byte a download writes, and each change of it would send the
# whole inventory (up to thousands of templates) with the next beat. Rounded down to 1 % of
# the pool, a pool written at 100 MB/s changes its inventory every ~100 s on a 1 TB pool
# rather than at every beat, and registration, which prefers the roomiest host, never sees
# more room than there is. The 64 MiB floor keeps a small pool from changing at every beat.
FREE_SPACE_STEPS = 100
MIN_FREE_SPACE_STEP = 64 * 2**20
# A request for the inventory is answered at most this often: three services asking at once
# get one inventory, which every one of them receives (it is an event).
REQUEST_INTERVAL_S = 1.0


@dataclass(frozen=True)
class Holdings:
    pools: list[msg.PoolStatus]
    templates: list[msg.StoredTemplate]
    certificates: list[msg.TrustedCertificate]

    @property
    def digest(self) -> str:
        return msg.inventory_digest(self.pools, self.templates, self.certificates)


class SentInventory:
    """This process's memory of the last inventory it sent: its digest, so a beat sends the
    inventory only when it changed, and when, to answer requests at most once a second. Kept
    in memory on purpose: a restarted agent sends its inventory with its first beat."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._digest: str | None = None
        self._at: float | None = None

    def is_current(self, digest: str) -> bool:
        with self._lock:
            return self._digest == digest

    def answered_lately(self) -> bool:
        """An inventory went out less than REQUEST_INTERVAL_S ago."""
        with self._lock:
            return self._at is not None and self._clock() - self._at < REQUEST_INTERVAL_S

    def sent(self, digest: str) -> None:
        with self._lock:
            self._digest, self._at = digest, self._clock()


def holdings(uow: AgentUnitOfWork, pool_id: str, pool: Path, truststore: TrustStore) -> Holdings:
    usage = shutil.disk_usage(pool)
    return Holdings(
        pools=[
            msg.PoolStatus(
                pool_id=pool_id,
                capacity_bytes=usage.total,
                free_bytes=rounded_free(usage.free, usage.total),
            )
        ],
        templates=[
            msg.StoredTemplate(
                template_id=f.template_id,
                pool_id=f.pool_id,
                path=f.path,
                size=f.size,
                digest=f.digest,
                image_digest=f.image_digest,
                last_used_at=f.last_used_at,
            )
            for f in uow.pool.all()
        ],
        certificates=_trusted(truststore),
    )


def rounded_free(free: int, capacity: int) -> int:
    """`free` rounded down to a step of 1 % of `capacity`, at least MIN_FREE_SPACE_STEP."""
    step = max(capacity // FREE_SPACE_STEPS, MIN_FREE_SPACE_STEP)
    return free - free % step


def send(
    uow: AgentUnitOfWork,
    held: Holdings,
    sent_inventory: SentInventory,
    host_id: str,
    zone_id: str,
    cluster_id: str,
) -> None:
    """Emit the inventory in this transaction; it counts as sent once that commits."""
    digest = held.digest
    uow.emit(
        msg.HostInventory(
            host_id=host_id,
            zone_id=zone_id,
            cluster_id=cluster_id,
            pools=held.pools,
            templates=held.templates,
            certificates=held.certificates,
            digest=digest,
            sent_at=datetime.now(UTC),
        )
    )
    uow.after_commit(lambda: sent_inventory.sent(digest))


def _trusted(truststore: TrustStore) -> list[msg.TrustedCertificate]:
    """What the store really holds. An unreadable store is reported empty (and by /readyz),
    so that the host still says it is alive."""
    try:
        inventory = truststore.inventory()
    except TrustStoreError as err:
        log.error("truststore.unreadable", error=str(err))
        return []
    return [msg.TrustedCertificate(alias=a, fingerprint_sha256=fp) for a, fp in inventory]
