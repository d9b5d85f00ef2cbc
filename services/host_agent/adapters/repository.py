"""Repositories for download jobs, the templates stored on the pool, and the cache's limits."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from directdl.contracts.pool import CachePolicy
from host_agent.adapters.orm import CachePolicyRow, JobRow, StoredTemplateRow
from host_agent.domain import UNFINISHED, JobState, StoredFile


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

    def transition(self, job_id: str, from_states: Iterable[JobState], to: JobState) -> bool:
        """Move the job on only from one of `from_states`, decided by the database itself: a
        cancel and a worker's claim that race cannot both win."""
        result = self.session.execute(
            update(JobRow)
            .where(JobRow.job_id == job_id, JobRow.state.in_(list(from_states)))
            .values(state=to, updated_at=_now())
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def set_validator(self, job_id: str, validator: str | None) -> None:
        self.session.execute(
            update(JobRow).where(JobRow.job_id == job_id).values(validator=validator)
        )

    def unfinished(self, template_id: str | None = None) -> list[JobRow]:
        """Jobs not ended (queued, running or held), oldest first; of one template if given."""
        query = select(JobRow).where(JobRow.state.in_(UNFINISHED)).order_by(JobRow.created_at)
        if template_id is not None:
            query = query.where(JobRow.template_id == template_id)
        return list(self.session.scalars(query))

    def hold_unfinished(self) -> list[JobRow]:
        """At start: every job not ended waits for its deploy's owner to say resume or cancel."""
        rows = self.unfinished()
        if rows:
            self.session.execute(
                update(JobRow)
                .where(JobRow.job_id.in_([row.job_id for row in rows]))
                .values(state=JobState.HELD, updated_at=_now())
            )
        return rows

    def templates_in_use(self) -> set[str]:
        return set(
            self.session.scalars(
                select(JobRow.template_id).where(JobRow.state.in_(UNFINISHED)).distinct()
            )
        )


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
        row.image_digest = stored.image_digest
        row.stored_at = row.last_used_at = _now()
        self.session.add(row)
        self.session.flush()

    def touch(self, template_id: str) -> None:
        """The copy answered a deploy: it is the most recently used."""
        self.session.execute(
            update(StoredTemplateRow)
            .where(StoredTemplateRow.template_id == template_id)
            .values(last_used_at=_now())
        )

    def remove(self, template_id: str) -> None:
        self.session.execute(
            delete(StoredTemplateRow).where(StoredTemplateRow.template_id == template_id)
        )


class CachePolicyRepository:
    _ID = 1

    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self) -> CachePolicy:
        row = self.session.get(CachePolicyRow, self._ID)
        if row is None:
            return CachePolicy()
        return CachePolicy(max_bytes=row.max_bytes, max_age_s=row.max_age_s)

    def save(self, policy: CachePolicy) -> None:
        row = self.session.get(CachePolicyRow, self._ID) or CachePolicyRow(id=self._ID)
        if row.max_bytes == policy.max_bytes and row.max_age_s == policy.max_age_s:
            return  # the same limits come with every download: no write for each
        row.max_bytes = policy.max_bytes
        row.max_age_s = policy.max_age_s
        row.updated_at = _now()
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
        image_digest=row.image_digest,
        last_used_at=row.last_used_at,
    )
