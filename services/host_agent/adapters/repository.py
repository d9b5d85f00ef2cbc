"""Repositories for download jobs and the templates stored on the pool."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from host_agent.adapters.orm import JobRow, StoredTemplateRow
from host_agent.domain import JobState, StoredFile


def _now() -> datetime:
    return datetime.now(UTC)


class JobRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, job_id: str, template_id: str, command: dict[str, Any]) -> None:
        now = _now()
        self.session.add(
            JobRow(
                job_id=job_id,
                template_id=template_id,
                state=JobState.QUEUED,
                command=command,
                created_at=now,
                updated_at=now,
            )
        )
        self.session.flush()

    def get(self, job_id: str) -> JobRow | None:
        return self.session.get(JobRow, job_id)

    def next_runnable(self, busy_templates: set[str]) -> JobRow | None:
        """The oldest queued job whose template nobody is downloading right now."""
        query = select(JobRow).where(JobRow.state == JobState.QUEUED).order_by(JobRow.created_at)
        for row in self.session.scalars(query):
            if row.template_id not in busy_templates:
                return row
        return None

    def set_state(
        self, job_id: str, state: JobState, code: str | None = None, message: str | None = None
    ) -> None:
        self.session.execute(
            update(JobRow)
            .where(JobRow.job_id == job_id)
            .values(state=state, error_code=code, error_message=message, updated_at=_now())
        )

    def requeue_running(self) -> list[str]:
        """Jobs a crash left RUNNING go back to the queue; they start again."""
        ids = list(
            self.session.scalars(select(JobRow.job_id).where(JobRow.state == JobState.RUNNING))
        )
        if ids:
            self.session.execute(
                update(JobRow).where(JobRow.job_id.in_(ids)).values(state=JobState.QUEUED)
            )
        return ids


class PoolRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, template_id: str) -> StoredFile | None:
        row = self.session.get(StoredTemplateRow, template_id)
        return _to_file(row) if row else None

    def all(self) -> list[StoredFile]:
        rows = self.session.scalars(
            select(StoredTemplateRow).order_by(StoredTemplateRow.template_id)
        )
        return [_to_file(row) for row in rows]

    def put(self, stored: StoredFile) -> None:
        row = self.session.get(StoredTemplateRow, stored.template_id) or StoredTemplateRow(
            template_id=stored.template_id
        )
        row.pool_id = stored.pool_id
        row.path = stored.path
        row.size = stored.size
        row.digest = stored.digest
        row.verified_digest = stored.verified_digest
        row.stored_at = _now()
        self.session.add(row)
        self.session.flush()


def _to_file(row: StoredTemplateRow) -> StoredFile:
    return StoredFile(
        template_id=row.template_id,
        pool_id=row.pool_id,
        path=row.path,
        size=row.size,
        digest=row.digest,
        verified_digest=row.verified_digest,
    )
