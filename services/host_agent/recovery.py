"""At start: hold the jobs a crash left unfinished, keep their partial files, ask about them."""

from __future__ import annotations

from pathlib import Path

import structlog

from directdl.contracts.download import DownloadsRecovered, RecoveredJob
from directdl.runtime.service import Service
from host_agent.download.sink import clean_partials, partial_name
from host_agent.uow import AgentUnitOfWork

log = structlog.get_logger(__name__)

RECOVER = "job.recover"


def recover(service: Service[AgentUnitOfWork], pool: Path, host_id: str) -> list[RecoveredJob]:
    """Every job not ended is HELD, and one DownloadsRecovered asks registration, the owner
    of their deploys, which to resume: a deploy that failed over to another host while this
    one was down must not have its job finish here too. Their partial files stay (resumed
    from, not fetched again); every other partial in the pool is a crash's leftover and goes."""
    with service.transaction(RECOVER) as uow:
        held = [
            RecoveredJob(
                job_id=row.job_id,
                deploy_id=str(row.command["deploy_id"]),
                template_id=row.template_id,
                bytes_kept=_size(pool / partial_name(row.template_id, row.job_id)),
            )
            for row in uow.jobs.hold_unfinished()
        ]
        if held:
            uow.emit(DownloadsRecovered(host_id=host_id, jobs=held))
    keep = {partial_name(job.template_id, job.job_id) for job in held}
    removed = clean_partials(pool, keep=keep)
    if held or removed:
        log.info(
            "jobs.recovered",
            held=[job.job_id for job in held],
            bytes_kept=sum(job.bytes_kept for job in held),
            partials_removed=[path.name for path in removed],
        )
    return held


def _size(path: Path) -> int:
    try:
        return path.lstat().st_size if path.is_file() and not path.is_symlink() else 0
    except FileNotFoundError:  # removed in between: nothing is kept
        return 0
