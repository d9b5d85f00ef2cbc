"""The registration unit of work: one transaction with the template repository on it."""

from __future__ import annotations

from sqlalchemy.orm import Session

from directdl.runtime.uow import UnitOfWork
from registration.adapters.repository import TemplateRepository


class RegistrationUnitOfWork(UnitOfWork):
    templates: TemplateRepository

    def _open(self, session: Session) -> None:
        self.templates = TemplateRepository(session)
