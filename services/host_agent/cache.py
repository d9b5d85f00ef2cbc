"""The pool as a cache: copies leave on request, with their template, or under the limits."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from datetime import UTC, datetime
from pathlib import Path

import structlog

from directdl.contracts.pool import (
    CachePolicy,
    CopiesRemoved,
    KeptCopy,
    RemovalReason,
    RemovedCopy,
)
from host_agent.domain import Eviction, StoredFile, evictions
from host_agent.uow import AgentUnitOfWork

log = structlog.get_logger(__name__)

# The work of the cache timer, and of the runner after it stores a copy.
ENFORCE = "cache.enforce"


def remove(
    uow: AgentUnitOfWork,
    template_ids: Iterable[str] | None,
    reason: RemovalReason,
    host_id: str,
    pool_id: str,
) -> CopiesRemoved:
    """Remove the copies of `template_ids` (every copy when None) that nothing uses; the
    others are kept, and the event says why. A deleted template's copy goes all the same:
    its jobs are being cancelled, and no deploy may use it any more."""
    stored = {copy.template_id: copy for copy in uow.pool.all()}
    wanted = list(stored) if template_ids is None else list(dict.fromkeys(template_ids))
    in_use = set() if reason is RemovalReason.DELETED else uow.jobs.templates_in_use()
    chosen: list[Eviction] = []
    kept: list[KeptCopy] = []
    for template_id in wanted:
        copy = stored.get(template_id)
        if copy is None:
            continue
        if template_id in in_use:
            kept.append(KeptCopy(template_id=template_id, reason="a download or deploy uses it"))
        else:
            chosen.append(Eviction(copy, reason))
    return _removed(uow, chosen, kept, host_id, pool_id)


def enforce(
    uow: AgentUnitOfWork,
    host_id: str,
    pool_id: str,
    protect: Collection[str] = (),
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> CopiesRemoved | None:
    """Hold the pool to its limits (the cache timer, and the runner after storing a copy,
    which protects the copy it just deployed); an event only when something went."""
    policy: CachePolicy = uow.cache_policy.get()
    if not (policy.max_bytes or policy.max_age_s):
        return None
    in_use = uow.jobs.templates_in_use() | set(protect)
    chosen = evictions(uow.pool.all(), in_use, policy, now())
    if not chosen:
        return None
    return _removed(uow, chosen, [], host_id, pool_id)


def enforce_on_timer(uow: AgentUnitOfWork, host_id: str, pool_id: str) -> None:
    enforce(uow, host_id, pool_id)


def _removed(
    uow: AgentUnitOfWork,
    chosen: list[Eviction],
    kept: list[KeptCopy],
    host_id: str,
    pool_id: str,
) -> CopiesRemoved:
    removed = [_unlink(uow, eviction) for eviction in chosen]
    event = CopiesRemoved(
        host_id=host_id,
        pool_id=pool_id,
        removed=removed,
        kept=kept,
        freed_bytes=sum(copy.size for copy in removed),
    )
    uow.emit(event)
    if removed:
        log.info(
            "cache.removed",
            templates=[c.template_id for c in removed],
            reasons=sorted({c.reason for c in removed}),
            freed_bytes=event.freed_bytes,
        )
    return event


def _unlink(uow: AgentUnitOfWork, eviction: Eviction) -> RemovedCopy:
    """The file goes first, then its row with this transaction: a crash in between leaves a
    row whose file is missing, which `StoredFile.is_intact` sees, never an untracked file."""
    copy: StoredFile = eviction.copy
    Path(copy.path).unlink(missing_ok=True)
    uow.pool.remove(copy.template_id)
    return RemovedCopy(
        template_id=copy.template_id, path=copy.path, size=copy.size, reason=eviction.reason
    )
