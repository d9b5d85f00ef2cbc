"""The async jobs, as rows."""

from __future__ import annotations

from dataclasses import asdict

from sqlalchemy.orm import Session

from api.adapters.orm import JobRow
from api.domain.jobs import Job, JobStatus


class JobRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, job: Job) -> None:
        self.session.add(JobRow(**_columns(job)))

    def get(self, job_id: str) -> Job | None:
        row = self.session.get(JobRow, job_id)
        return None if row is None else _job(row)

    def get_for_update(self, job_id: str) -> Job | None:
        # Replicas may both learn a job's end (an event and a query asking again): the row
        # lock makes the second one see the first's outcome instead of overwriting it.
        row = self.session.get(JobRow, job_id, with_for_update=True)
        return None if row is None else _job(row)

    def save(self, job: Job) -> None:
        self.session.merge(JobRow(**_columns(job)))


def _columns(job: Job) -> dict[str, object]:
    columns = asdict(job)
    columns["status"] = int(job.status)
    return columns


def _job(row: JobRow) -> Job:
    return Job(
        id=row.id,
        api=row.api,
        routing_key=row.routing_key,
        command=row.command,
        api_key=row.api_key,
        created_at=row.created_at,
        instance_type=row.instance_type,
        instance_id=row.instance_id,
        status=JobStatus(row.status),
        progress=row.progress,
        result_code=row.result_code,
        result=row.result,
        error_text=row.error_text,
        completed_at=row.completed_at,
        asked_again_at=row.asked_again_at,
    )
