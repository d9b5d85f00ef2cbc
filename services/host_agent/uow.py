"""The host agent's unit of work: jobs and pool contents in one transaction."""

from __future__ import annotations

from sqlalchemy.orm import Session

from directdl.runtime.uow import UnitOfWork
from host_agent.adapters.repository import JobRepository, PoolRepository


class AgentUnitOfWork(UnitOfWork):
    jobs: JobRepository
    pool: PoolRepository

    def _open(self, session: Session) -> None:
        self.jobs = JobRepository(session)
        self.pool = PoolRepository(session)
