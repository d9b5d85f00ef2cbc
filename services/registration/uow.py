"""The registration unit of work: one transaction with the service's repositories on it."""

from __future__ import annotations

from sqlalchemy.orm import Session

from directdl.runtime.uow import UnitOfWork
from registration.adapters.deploys import DeployRepository, HostRepository
from registration.adapters.prepares import PrepareRepository
from registration.adapters.repository import TemplateRepository


class RegistrationUnitOfWork(UnitOfWork):
    templates: TemplateRepository
    hosts: HostRepository
    deploys: DeployRepository
    prepares: PrepareRepository

    def _open(self, session: Session) -> None:
        self.templates = TemplateRepository(session)
        self.hosts = HostRepository(session)
        self.deploys = DeployRepository(session)
        self.prepares = PrepareRepository(session)
