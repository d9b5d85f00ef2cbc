"""The host agent's unit of work: jobs, pool contents and the cache's limits in one transaction."""

from __future__ import annotations

from sqlalchemy.orm import Session

from directdl.runtime.uow import UnitOfWork
from host_agent.adapters.repository import (
    CachePolicyRepository,
    JobRepository,
    PoolRepository,
)


class AgentUnitOfWork(UnitOfWork):
    jobs: JobRepository
    pool: PoolRepository
    cache_policy: CachePolicyRepository

    def _open(self, session: Session) -> None:
        self.jobs = JobRepository(session)
        self.pool = PoolRepository(session)
        self.cache_policy = CachePolicyRepository(session)
