"""The registration unit of work: one transaction with the service's repositories on it."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from directdl.runtime.uow import UnitOfWork
from registration.adapters.deploys import DeployRepository
from registration.adapters.hosts import HostRepository
from registration.adapters.prepares import PrepareRepository
from registration.adapters.repository import TemplateRepository
from registration.clock import ServiceClock


class RegistrationUnitOfWork(UnitOfWork):
    templates: TemplateRepository
    hosts: HostRepository
    deploys: DeployRepository
    prepares: PrepareRepository

    def __init__(self, sessions: sessionmaker[Session], clock: ServiceClock | None = None) -> None:
        super().__init__(sessions)
        # Whether a host is Up is judged at this clock (the service's one, from bootstrap);
        # a fresh one, at no lag, is the wall clock.
        self.clock = clock or ServiceClock()

    def _open(self, session: Session) -> None:
        self.templates = TemplateRepository(session)
        self.hosts = HostRepository(session, self.clock)
        self.deploys = DeployRepository(session)
        self.prepares = PrepareRepository(session)
