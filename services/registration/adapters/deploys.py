"""The deploys repository, with their attempts: domain objects in, and out."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.orm import Session

from directdl.contracts.deploy import AttemptState, TemplateDeployedFields, TemplateDeployFailed
from registration.adapters.orm import AttemptRow, DeployRow
from registration.domain.deploy import Attempt, Deploy, Outcome


@dataclass(frozen=True)
class DeployFilter:
    """What deploy.list selects by; None is any."""

    template_id: str | None = None
    zone_id: str | None = None
    host_id: str | None = None  # deploys that made an attempt on this host
    state: AttemptState | None = None
    id_prefix: str | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if self.template_id is not None:
            conditions.append(DeployRow.template_id == self.template_id)
        if self.zone_id is not None:
            conditions.append(DeployRow.zone_id == self.zone_id)
        if self.host_id is not None:
            conditions.append(DeployRow.attempts.any(AttemptRow.host_id == self.host_id))
        if self.state is not None:
            conditions.append(DeployRow.state == self.state)
        if self.id_prefix is not None:
            conditions.append(DeployRow.deploy_id.startswith(self.id_prefix, autoescape=True))
        return conditions


class DeployRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def save(self, deploy: Deploy) -> None:
        """Add the deploy or bring its row up to date, its attempts too (none is ever removed)."""
        row = self.session.get(DeployRow, deploy.deploy_id)
        if row is None:
            row = DeployRow(deploy_id=deploy.deploy_id)
            self.session.add(row)
        row.template_id = deploy.template_id
        row.zone_id = deploy.zone_id
        row.requested_host_id = deploy.requested_host_id
        row.requested_pool_id = deploy.requested_pool_id
        row.state = deploy.state
        row.reply_to = deploy.reply_to
        row.correlation_id = deploy.correlation_id
        row.outcome = deploy.outcome.model_dump(mode="json") if deploy.outcome else None
        row.created_at = deploy.created_at
        row.updated_at = deploy.updated_at
        rows = {a.job_id: a for a in row.attempts}
        for attempt in deploy.attempts:
            attempt_row = rows.get(attempt.job_id)
            if attempt_row is None:
                attempt_row = AttemptRow(job_id=attempt.job_id)
                row.attempts.append(attempt_row)
            attempt_row.host_id = attempt.host_id
            attempt_row.state = attempt.state
            attempt_row.error_code = attempt.error_code
            attempt_row.message = attempt.message
            attempt_row.started_at = attempt.started_at
            attempt_row.finished_at = attempt.finished_at
            attempt_row.bytes_done = attempt.bytes_done
            attempt_row.total_bytes = attempt.total_bytes
            attempt_row.rate_bps = attempt.rate_bps
            attempt_row.progress_at = attempt.progress_at
        self.session.flush()

    def get(self, deploy_id: str) -> Deploy | None:
        row = self.session.get(DeployRow, deploy_id)
        return _to_deploy(row) if row else None

    def for_attempt(self, job_id: str) -> Deploy | None:
        """The deploy one of whose attempts has this job id, locked until the commit: a host's
        report and the watchdog settling the same attempt at once would otherwise both end the
        deploy, and its caller would get two answers."""
        owner = select(AttemptRow.deploy_id).where(AttemptRow.job_id == job_id).scalar_subquery()
        self._lock(DeployRow.deploy_id == owner)
        row = self.session.get(AttemptRow, job_id)
        return _to_deploy(row.deploy) if row else None

    def running(self, on_hosts: Collection[str] | None = None) -> list[Deploy]:
        """The deploys waiting for an attempt, each with its running attempt (on one of
        `on_hosts`, when given); locked until the commit, as `for_attempt` locks one."""
        running = AttemptRow.state == AttemptState.RUNNING
        if on_hosts is not None:
            running = running & AttemptRow.host_id.in_(sorted(on_hosts))
        waiting = DeployRow.attempts.any(running)
        self._lock(waiting)
        query = select(DeployRow).where(waiting).order_by(DeployRow.created_at)
        return [_to_deploy(row) for row in self.session.scalars(query)]

    def page(self, where: DeployFilter, page: int, page_size: int) -> tuple[list[Deploy], int]:
        """One page of the deploys `where` selects, newest first, and how many it selects."""
        conditions = where.conditions()
        total = self.session.scalar(select(func.count()).select_from(DeployRow).where(*conditions))
        query = (
            select(DeployRow)
            .where(*conditions)
            .order_by(DeployRow.created_at.desc(), DeployRow.deploy_id)
            .offset((page - 1) * page_size)
            .limit(page_size)
        )
        return [_to_deploy(row) for row in self.session.scalars(query)], int(total or 0)

    def _lock(self, *where: ColumnElement[bool]) -> None:
        # A write, not SELECT ... FOR UPDATE: SQLite ignores that, and its driver reads outside
        # any transaction until the first write. The write takes SQLite's one writer lock, and
        # PostgreSQL's row locks, before the rows are read (as certificate's operations do).
        touch = update(DeployRow).where(*where).values(state=DeployRow.state)
        self.session.execute(touch, execution_options={"synchronize_session": False})


def _to_deploy(row: DeployRow) -> Deploy:
    return Deploy(
        deploy_id=row.deploy_id,
        template_id=row.template_id,
        zone_id=row.zone_id,
        requested_host_id=row.requested_host_id,
        requested_pool_id=row.requested_pool_id,
        reply_to=row.reply_to,
        correlation_id=row.correlation_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        state=row.state,
        attempts=tuple(
            Attempt(
                job_id=a.job_id,
                host_id=a.host_id,
                started_at=a.started_at,
                state=a.state,
                error_code=a.error_code,
                message=a.message,
                finished_at=a.finished_at,
                bytes_done=a.bytes_done,
                total_bytes=a.total_bytes,
                rate_bps=a.rate_bps,
                progress_at=a.progress_at,
            )
            for a in row.attempts
        ),
        outcome=_outcome(row.state, row.outcome),
    )


def _outcome(state: AttemptState, stored: dict[str, object] | None) -> Outcome | None:
    """The ended deploy's event, as it was stored: a success's fields, or the failure."""
    if stored is None:
        return None
    if state is AttemptState.SUCCEEDED:
        return TemplateDeployedFields.model_validate(stored)
    return TemplateDeployFailed.model_validate(stored)
