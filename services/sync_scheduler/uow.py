"""The sync-scheduler's unit of work."""

from __future__ import annotations

from sqlalchemy.orm import Session

from directdl.runtime.uow import UnitOfWork
from sync_scheduler.adapters.hosts import Hosts
from sync_scheduler.adapters.repository import Projections


class SchedulerUnitOfWork(UnitOfWork):
    projections: Projections
    hosts: Hosts

    def _open(self, session: Session) -> None:
        self.projections = Projections(session)
        self.hosts = Hosts(session)
