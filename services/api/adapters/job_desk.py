"""Where HTTP threads record async jobs and read them: each in a short transaction of its own."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from api.domain.jobs import Job
from api.uow import ApiUnitOfWork


class JobDesk:
    def __init__(self, unit_of_work: Callable[[], ApiUnitOfWork], clock: Callable[[], datetime]):
        self.unit_of_work = unit_of_work
        self.clock = clock

    def record(self, job: Job) -> None:
        """Committed before its command is published: a reply can never find no job."""
        with self.unit_of_work() as uow:
            uow.jobs.add(job)
            uow.commit()

    def get(self, job_id: str) -> Job | None:
        with self.unit_of_work() as uow:
            return uow.jobs.get(job_id)

    def update(self, job_id: str, change: Callable[[Job], Job]) -> Job | None:
        """`change` applied to the job as stored now; a job that has ended stays as it ended,
        whoever learnt of it first (another thread, a replica, an event)."""
        with self.unit_of_work() as uow:
            job = uow.jobs.get_for_update(job_id)
            if job is None:
                return None
            if not job.pending:
                return job
            changed = change(job)
            if changed is not job:
                uow.jobs.save(changed)
                uow.commit()
            return changed

    def keep(self, job_id: str, result: dict[str, Any]) -> None:
        """A finished job's CloudStack jobresult, made once and kept."""
        with self.unit_of_work() as uow:
            job = uow.jobs.get_for_update(job_id)
            if job is not None and not job.pending:
                uow.jobs.save(replace(job, result=result))
                uow.commit()
